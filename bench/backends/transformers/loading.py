"""Load a resolved model through transformers and record what actually ran.

``load_model(resolved, device, quant, attn, dtype)`` calls ``AutoModelForCausalLM.from_pretrained``
and returns the model, its tokenizer and a ``bench.results.LoadRecord``. Model, config and tokenizer
are loaded with ``trust_remote_code=False`` said explicitly: a checkpoint whose ``auto_map`` asks
for its own Python code is refused, never run, and transformers never prompts on stdin.

- ``quant``: ``auto`` and ``mxfp4`` load the checkpoint's own ``quantization_config`` (MXFP4 for
  gpt-oss); ``bf16`` passes ``Mxfp4Config(dequantize=True)``. Whether transformers then ran the
  MXFP4 kernels or dequantized to bf16 is read from the experts module's class afterwards:
  ``Mxfp4GptOssExperts`` -> ``mxfp4``, ``GptOssExperts`` -> ``bf16``. When MXFP4 was wanted and
  bf16 ran, the reason transformers logged (logger ``transformers.quantizers``) goes into
  ``fallback_reason`` and a warning goes to stderr.
- ``device``: as ``bench.models.device.resolve_device`` decides it (callers pass the resolved
  ``cpu`` or ``cuda:N``; ``auto`` and ``cuda`` are resolved here for direct callers); or a
  ``plan`` over several devices (``parallel.py``: a pipeline, or one torchrun rank's share). The
  record's ``layout`` says what each device held.
- ``attn``: ``auto`` lets transformers choose on a GPU and means ``eager`` on the CPU, the only
  implementation gpt-oss supports there (``sdpa`` is refused because of the attention sinks).

Load metrics (names from bench.results.LOAD_METRICS): ``load_s`` is the wall time of
``from_pretrained`` (CUDA synchronised); ``load_alloc_bytes`` is ``torch.cuda.memory_allocated``
after the load and ``load_peak_bytes`` ``torch.cuda.max_memory_allocated`` during it (peak stats
reset just before), summed over the devices of a layout. On the CPU both are None: those metrics
mean "memory held by torch's device allocator", and the process RSS is a different quantity that
would not compare across runs.
``download_s`` comes from the resolved model.
"""

from __future__ import annotations

import gc
import json
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.backends.transformers.parallel import ParallelPlan, describe_layout, placement_kwargs
from bench.models.device import resolve_device
from bench.results import QUANTS, LoadRecord
from diagnostics.errors import UserError, one_line

MXFP4_EXPERTS = "Mxfp4GptOssExperts"
BF16_EXPERTS = "GptOssExperts"
_QUANTIZER_LOGGER = "transformers.quantizers"

log = logging.getLogger("gptoss.loading")

# The last reason transformers gave for dequantizing: its warnings are logged once per process,
# so a second load in the same process may log nothing new.
_last_quantizer_reason: str | None = None


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    record: LoadRecord
    device: str


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.messages.append(record.getMessage())
        except Exception:  # pragma: no cover - a broken log call must not break the load
            pass


def _resolve_dtype(dtype):
    import torch

    if dtype is None:
        return torch.bfloat16
    if isinstance(dtype, torch.dtype):
        return dtype
    names = {"bf16": torch.bfloat16, "bfloat16": torch.bfloat16, "fp16": torch.float16, "float16": torch.float16,
             "half": torch.float16, "fp32": torch.float32, "float32": torch.float32, "float": torch.float32}
    try:
        return names[str(dtype).lower().removeprefix("torch.")]
    except KeyError:
        raise UserError(f"unknown dtype '{dtype}'; use bfloat16, float16 or float32.") from None


def _checkpoint_quant_method(path: str) -> str | None:
    try:
        cfg = json.loads((Path(path) / "config.json").read_text())
    except (OSError, ValueError):
        return None
    qc = cfg.get("quantization_config") or {}
    return qc.get("quant_method") if isinstance(qc, dict) else None


def experts_info(model) -> tuple[str | None, str | None]:
    """(experts module class name, weights path) from the first MoE experts module."""
    for module in model.modules():
        name = type(module).__name__
        if name == MXFP4_EXPERTS:
            return name, "mxfp4"
        if name == BF16_EXPERTS:
            return name, "bf16"
    return None, None


def count_parameters(model) -> int:
    """Logical parameters: MXFP4 experts count their unpacked values, so both paths agree."""
    total = 0
    for module in model.modules():
        own = dict(module.named_parameters(recurse=False))
        if type(module).__name__ == MXFP4_EXPERTS:
            e, h, i = module.num_experts, module.hidden_size, module.intermediate_size
            total += e * h * 2 * i + e * i * h
            own.pop("gate_up_proj", None)
            own.pop("down_proj", None)
        total += sum(p.numel() for p in own.values())
    return total


def transformers_major_minor() -> tuple[int, int]:
    import transformers

    parts = transformers.__version__.split(".")
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):  # pragma: no cover
        return (5, 0)


def _clear_warning_once_cache() -> None:
    try:
        from transformers.utils import logging as tlog

        tlog.warning_once.cache_clear()
    except Exception:  # pragma: no cover - older/newer transformers without it
        pass


def _reason_from(messages: list[str]) -> str | None:
    relevant = [m for m in messages if "dequantiz" in m.lower() or "mxfp4" in m.lower()]
    if not relevant:
        return None
    return " | ".join(" ".join(m.split()) for m in relevant)


def _from_pretrained(path: str, kwargs: dict) -> tuple[Any, float, list[str]]:
    import torch
    from transformers import AutoModelForCausalLM

    capture = _Capture()
    qlog = logging.getLogger(_QUANTIZER_LOGGER)
    old_level = qlog.level
    qlog.addHandler(capture)
    qlog.setLevel(logging.WARNING)  # capture the reason even under TRANSFORMERS_VERBOSITY=error
    _clear_warning_once_cache()
    try:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - start
    finally:
        qlog.removeHandler(capture)
        qlog.setLevel(old_level)
    return model, elapsed, capture.messages


def needs_own_code(path: str | Path) -> bool:
    """True when the checkpoint folder asks for its own Python code: an ``auto_map`` in its
    config.json or tokenizer_config.json. Decided from the files, before anything is loaded, so
    an unrelated error that happens to mention remote code is never mistaken for this."""
    for name in ("config.json", "tokenizer_config.json"):
        try:
            doc = json.loads((Path(path) / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict) and doc.get("auto_map"):
            return True
    return False


def _remote_code_refused(resolved) -> UserError:
    return UserError(
        f"{resolved.id} needs its own Python code to load (an auto_map in its config.json or "
        "tokenizer_config.json) and gptoss-harness never runs a checkpoint's code; pass a gpt-oss "
        "checkpoint that transformers loads by itself."
    )


def _oom_error() -> type:
    import torch

    return getattr(torch, "OutOfMemoryError", None) or getattr(torch.cuda, "OutOfMemoryError", MemoryError)


def _warn(message: str) -> None:
    """A warning on stderr: through logging when the application configured it, else printed."""
    if log.hasHandlers():
        log.warning(message)
    else:
        print(f"WARNING: {message}", file=sys.stderr)


def load_model(resolved, device: str = "auto", quant: str = "auto", attn: str = "auto", dtype=None,
               plan: ParallelPlan | None = None) -> LoadedModel:
    """Load ``resolved`` (a bench.models.sources.ResolvedModel) and record the path that ran.
    ``plan`` spreads it over several devices (bench.backends.transformers.parallel); without one
    it goes to ``device``."""
    global _last_quantizer_reason
    import torch

    quant = (quant or "auto").lower()
    if quant not in QUANTS:
        raise UserError(f"unknown quantization '{quant}'; use auto, mxfp4 or bf16.")
    attn = attn or "auto"
    plan = plan or ParallelPlan("single", (resolve_device(device),))
    dev = plan.devices[0]
    torch_dtype = _resolve_dtype(dtype)
    path = str(resolved.path)
    if needs_own_code(path):
        raise _remote_code_refused(resolved)
    method = _checkpoint_quant_method(path)
    is_mxfp4_ckpt = method == "mxfp4"

    if attn == "auto":
        attn_impl = "eager" if dev == "cpu" else None
    else:
        attn_impl = attn

    kwargs: dict[str, Any] = {**placement_kwargs(plan), "trust_remote_code": False}
    kwargs["dtype" if transformers_major_minor() >= (4, 56) else "torch_dtype"] = torch_dtype
    if attn_impl:
        kwargs["attn_implementation"] = attn_impl
    if quant == "bf16" and is_mxfp4_ckpt:
        from transformers import Mxfp4Config

        kwargs["quantization_config"] = Mxfp4Config(dequantize=True)

    cuda = dev.startswith("cuda")
    if cuda:
        torch.cuda.set_device(torch.device(dev))
        for d in plan.devices:
            torch.cuda.reset_peak_memory_stats(d)

    fallback_reason: str | None = None
    failure: Exception | None = None
    try:
        model, load_s, messages = _from_pretrained(path, kwargs)
    except (UserError, KeyboardInterrupt, _oom_error()):
        raise
    except Exception as e:
        text = one_line(e, 2000)
        if isinstance(e, ValueError) and attn_impl and ("attention" in text.lower() or "attn" in text.lower()):
            raise UserError(
                f"transformers refused attention '{attn_impl}' for this model on {dev} ({text[:200]}); "
                "use --attn eager (the one gpt-oss supports on every device) or --attn auto."
            ) from None
        if not (is_mxfp4_ckpt and quant in ("auto", "mxfp4")):
            raise
        failure = e
    if failure is not None:  # the MXFP4 kernel path failed to load
        e = failure
        text = one_line(f"{type(e).__name__}: {e}", 400)
        if quant == "mxfp4":
            raise UserError(
                f"loading the MXFP4 kernel path failed ({text}); run `gptoss check` for the fix "
                "(kernels window, LOCAL_KERNELS), or use --quant bf16."
            ) from None
        # auto: the kernel path broke (e.g. the hub kernel cannot be fetched): load bf16 instead
        fallback_reason = f"the MXFP4 kernel path failed to load: {text}"
        gc.collect()
        if cuda:
            torch.cuda.empty_cache()
            for d in plan.devices:
                torch.cuda.reset_peak_memory_stats(d)
        from transformers import Mxfp4Config

        kwargs["quantization_config"] = Mxfp4Config(dequantize=True)
        model, load_s, messages = _from_pretrained(path, kwargs)

    model.eval()
    layout = describe_layout(model, plan)
    alloc = sum(d.load_alloc_bytes for d in layout.devices) if cuda else None
    peak = sum(d.load_peak_bytes for d in layout.devices) if cuda else None

    experts_class, weights_path = experts_info(model)
    captured = _reason_from(messages)
    if captured:
        _last_quantizer_reason = captured
    if weights_path == "bf16" and quant in ("auto", "mxfp4") and fallback_reason is None:
        if is_mxfp4_ckpt:
            fallback_reason = captured or _last_quantizer_reason or (
                "transformers dequantized the MXFP4 experts to bf16 without saying why"
            )
        elif quant == "mxfp4":
            fallback_reason = "the checkpoint is not MXFP4-quantized (its config.json has no mxfp4 quantization_config)"
    if fallback_reason and (quant == "mxfp4" or cuda):
        _warn(
            f"MXFP4 was wanted but the experts run in bf16 ({experts_class}): {fallback_reason} "
            "-- memory and speed are those of the bf16 path; `gptoss check` says how to get MXFP4."
        )

    try:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
    except (OSError, ValueError) as e:
        raise UserError(f"{resolved.id} has no usable tokenizer ({one_line(e, 160)}); pass a checkpoint folder that includes one.") from None

    record = LoadRecord(
        quant=quant,
        attn=attn,
        weights_path=weights_path,
        experts_class=experts_class,
        attn_implementation=getattr(model.config, "_attn_implementation", None),
        dtype=str(getattr(model, "dtype", torch_dtype)).removeprefix("torch."),
        parameters=count_parameters(model),
        device=dev,
        fallback_reason=fallback_reason,
        layout=layout,
        metrics={
            "download_s": getattr(resolved, "download_s", None),
            "load_s": load_s,
            "load_alloc_bytes": alloc,
            "load_peak_bytes": peak,
        },
    )
    return LoadedModel(model=model, tokenizer=tokenizer, record=record, device=dev)


def unload(loaded: LoadedModel | None) -> None:
    """Drop the model and give its memory back (gc + the CUDA cache)."""
    if loaded is not None:
        loaded.model = None
        loaded.tokenizer = None
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
    except Exception:  # pragma: no cover
        pass
