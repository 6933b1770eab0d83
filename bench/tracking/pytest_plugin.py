"""pytest plugin: write your own gpt-oss performance tests with pytest-benchmark.

Registered as the ``gptoss`` pytest11 entry point (or ``-p bench.tracking.pytest_plugin``). It gives:

* ``gptoss_model`` (session): the model and tokenizer, resolved by ``bench.models.sources`` and loaded
  by ``bench.backends.transformers.loading`` once per session, from ``--gptoss-model`` (default ``synthetic:tiny``, or
  the ``gptoss_model`` ini value), ``--gptoss-device``, ``--gptoss-quant``, ``--gptoss-attn``.
  Override this fixture in a conftest to bring your own model object.
* ``gptoss_generate`` (function): wraps pytest-benchmark's ``benchmark`` fixture; call it to
  benchmark ``model.generate`` producing exactly ``new_tokens`` tokens (greedy)::

      def test_decode_speed(gptoss_generate):
          out = gptoss_generate("Explain KV caches.", new_tokens=64, effort="low", rounds=5)
          assert out.shape[-1] > 64

  Each call is one pytest-benchmark measurement (``benchmark.pedantic``: ``rounds`` timed calls
  after ``warmup_rounds`` untimed ones, CUDA synchronized), so ``--benchmark-json``,
  ``--benchmark-save``, ``--benchmark-compare`` and ``--benchmark-compare-fail`` work as for any
  pytest-benchmark test. ``extra_info`` records the model, device, weights path, token counts
  and tokens per second.

Nothing heavy is imported here at module level: this module loads in every pytest run of a
project that installs gptoss-harness.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

DEFAULT_MODEL = "synthetic:tiny"
DEFAULT_PROMPT = "Explain in two sentences what a key-value cache does in a transformer."
_INFO_KEY = "_gptoss_info"


def pytest_addoption(parser):
    group = parser.getgroup("gptoss", "gpt-oss benchmarks (gptoss-harness)")
    group.addoption("--gptoss-model", default=None,
                    help=f"model for the gptoss_model fixture: a hub id, a checkpoint folder or synthetic:NAME "
                         f"[default: ini gptoss_model, else {DEFAULT_MODEL}]")
    group.addoption("--gptoss-device", default=None, help="device for gptoss_model: auto, cpu, cuda, cuda:N [default: auto]")
    group.addoption("--gptoss-quant", default=None, help="weights path to ask for: auto, mxfp4, bf16 [default: auto]")
    group.addoption("--gptoss-attn", default=None, help="attention implementation: auto, eager, sdpa, ... [default: auto]")
    parser.addini("gptoss_model", f"model for the gptoss_model fixture [default: {DEFAULT_MODEL}]", default=DEFAULT_MODEL)
    parser.addini("gptoss_device", "device for the gptoss_model fixture [default: auto]", default="auto")


@dataclass
class GptossOptions:
    model: str
    device: str = "auto"
    quant: str = "auto"
    attn: str = "auto"


def gptoss_options(config) -> GptossOptions:
    return GptossOptions(
        model=config.getoption("--gptoss-model") or config.getini("gptoss_model") or DEFAULT_MODEL,
        device=config.getoption("--gptoss-device") or config.getini("gptoss_device") or "auto",
        quant=config.getoption("--gptoss-quant") or "auto",
        attn=config.getoption("--gptoss-attn") or "auto",
    )


@pytest.fixture(scope="session")
def gptoss_model(request):
    """The loaded model (``bench.backends.transformers.loading.LoadedModel``: model, tokenizer, record, device)."""
    from diagnostics.errors import UserError

    opts = gptoss_options(request.config)
    try:
        from bench.backends.transformers.loading import load_model
        from bench.models.device import resolve_device
        from bench.models.sources import resolve
        from diagnostics.modelref import ModelRef

        device = resolve_device(opts.device)
        resolved = resolve(ModelRef.parse(opts.model), progress=False)
        loaded = load_model(resolved, device=device, quant=opts.quant, attn=opts.attn)
    except UserError as e:
        pytest.fail(f"gptoss: {e}", pytrace=False)
    setattr(request.config, _INFO_KEY, {"model": opts.model, **_describe(loaded)})
    yield loaded
    try:
        from bench.backends.transformers.loading import unload
    except ImportError:
        return
    try:
        unload(loaded)
    except Exception:  # freeing memory at session end must not turn a green run red
        pass


def _describe(loaded: Any) -> dict[str, Any]:
    record = getattr(loaded, "record", None)
    return {
        "device": str(getattr(loaded, "device", "")),
        "weights_path": getattr(record, "weights_path", None),
        "experts_class": getattr(record, "experts_class", None),
        "attn_implementation": getattr(record, "attn_implementation", None),
    }


class GenerateBenchmark:
    """Callable handed to a test by ``gptoss_generate``."""

    def __init__(self, benchmark, loaded, model_id: str | None = None):
        self.benchmark = benchmark
        self.loaded = loaded
        self.model_id = model_id

    def input_ids(self, prompt: str | None, effort: str, prompt_len: int | None) -> list[int]:
        tokenizer = self.loaded.tokenizer
        if prompt_len is not None:
            if prompt is not None:
                raise ValueError("pass either a prompt or prompt_len, not both")
            from bench.models.prompts import build_prompt

            return list(build_prompt(tokenizer, effort, prompt_len).ids)
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt if prompt is not None else DEFAULT_PROMPT}],
            tokenize=False, add_generation_prompt=True, reasoning_effort=effort,
        )
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])

    def __call__(
        self,
        prompt: str | None = None,
        *,
        new_tokens: int = 32,
        effort: str = "low",
        prompt_len: int | None = None,
        batch_size: int = 1,
        rounds: int = 5,
        warmup_rounds: int = 1,
        **generate_kwargs: Any,
    ):
        """Benchmark ``model.generate`` on a chat prompt; returns the last output.

        ``new_tokens`` exactly (``min_new_tokens = max_new_tokens``, greedy) unless overridden in
        ``generate_kwargs``; ``prompt_len`` builds a prompt of exactly that many tokens instead of
        ``prompt``.
        """
        import torch

        if new_tokens < 1 or batch_size < 1 or rounds < 1 or warmup_rounds < 0:
            raise ValueError("new_tokens, batch_size and rounds must be >= 1 and warmup_rounds >= 0")
        model, tokenizer, device = self.loaded.model, self.loaded.tokenizer, self.loaded.device
        ids = self.input_ids(prompt, effort, prompt_len)
        input_ids = torch.tensor([ids] * batch_size, dtype=torch.long, device=device)
        attention_mask = torch.ones_like(input_ids)
        kwargs: dict[str, Any] = {"do_sample": False, "max_new_tokens": new_tokens, "min_new_tokens": new_tokens}
        pad = getattr(tokenizer, "pad_token_id", None)
        if pad is None:
            pad = getattr(getattr(model, "generation_config", None), "pad_token_id", None)
        if pad is not None:
            kwargs["pad_token_id"] = pad
        kwargs.update(generate_kwargs)
        cuda = str(device).startswith("cuda")

        def run():
            if cuda:
                torch.cuda.synchronize()
            with torch.inference_mode():
                out = model.generate(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
            if cuda:
                torch.cuda.synchronize()
            return out

        out = self.benchmark.pedantic(run, rounds=rounds, warmup_rounds=warmup_rounds, iterations=1)
        sequences = getattr(out, "sequences", out)
        produced = int(sequences.shape[-1]) - len(ids) if hasattr(sequences, "shape") else None
        info = self.benchmark.extra_info
        info.update({
            "gptoss_model": self.model_id,
            **{f"gptoss_{k}": v for k, v in _describe(self.loaded).items()},
            "prompt_tokens": len(ids),
            "new_tokens": produced if produced is not None else new_tokens,
            "batch_size": batch_size,
            "effort": effort,
        })
        stats = getattr(getattr(self.benchmark, "stats", None), "stats", None)
        median = getattr(stats, "median", None) if stats else None
        if median and produced:
            info["tok_s"] = produced * batch_size / median  # end-to-end, prefill included
        return out


@pytest.fixture
def gptoss_generate(request, gptoss_model):
    """Benchmark ``gptoss_model.model.generate`` with pytest-benchmark (see the module docs)."""
    try:
        benchmark = request.getfixturevalue("benchmark")
    except pytest.FixtureLookupError:
        pytest.fail("gptoss_generate needs pytest-benchmark: pip install pytest-benchmark "
                    "(and do not disable it with -p no:benchmark).", pytrace=False)
    info = getattr(request.config, _INFO_KEY, None) or {}
    model_id = info.get("model") or getattr(getattr(getattr(gptoss_model, "model", None), "config", None), "_name_or_path", None)
    return GenerateBenchmark(benchmark, gptoss_model, model_id)


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_update_machine_info(config, machine_info):
    """Record what gptoss loaded (when it did) beside pytest-benchmark's machine info."""
    info = getattr(config, _INFO_KEY, None)
    if not info:
        return
    import sys

    extra = dict(info)
    for name in ("torch", "transformers", "triton", "kernels"):
        mod = sys.modules.get(name)  # only what this session already imported
        if mod is not None:
            extra[name] = getattr(mod, "__version__", None)
    torch = sys.modules.get("torch")
    if torch is not None and str(info.get("device", "")).startswith("cuda"):
        try:
            extra["gpu"] = torch.cuda.get_device_name()
        except Exception:
            pass
    machine_info["gptoss"] = extra
