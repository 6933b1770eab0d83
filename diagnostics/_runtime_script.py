"""Runs in a FRESH interpreter (``python -c <this file's text>``), never imported by diagnostics.

A fresh process is the only honest witness: the caller's process (a notebook) may hold stale
modules or cached answers. It reports, as one JSON line after a marker on stdout:

* ``torch``: version, CUDA build, whether CUDA is usable, the devices torch sees;
* ``mxfp4``: what the installed transformers itself decides for a pre-quantized gpt-oss
  checkpoint. It builds ``Mxfp4HfQuantizer(Mxfp4Config(), pre_quantized=True)`` and runs the two
  steps ``from_pretrained`` runs before loading weights: ``validate_environment(device_map="auto")``
  and ``_process_model_before_weight_loading(model, use_kernels=False)``. Either may flip
  ``quantization_config.dequantize`` to True (the silent bf16 fallback) and log a warning, which
  is captured. Any call to ``get_kernel`` is intercepted and recorded, never executed: nothing is
  downloaded, compiled or loaded. Written for transformers 4.55 .. 5.23, whose internals differ:
  every step is optional and failures are reported, not raised.
"""

import importlib
import importlib.util
import json
import logging
import sys
import time
import types
import warnings

MARK = "@@gptoss-runtime@@"


def _err(e):
    return ("%s: %s" % (type(e).__name__, e))[:600]


def torch_facts():
    try:
        import torch
    except ImportError as e:
        return {"installed": False, "error": _err(e)}
    except Exception as e:  # a broken install: importable but failing
        return {"installed": True, "error": _err(e)}
    f = {
        "installed": True,
        "version": getattr(torch, "__version__", None),
        "cuda_build": getattr(torch.version, "cuda", None),
        "hip_build": getattr(torch.version, "hip", None),
        "cuda_available": False,
        "device_count": 0,
        "devices": [],
        "bf16_supported": None,
        "cuda_warning": None,
        "cxx11_abi": None,
        "error": None,
    }
    try:
        f["cxx11_abi"] = bool(torch.compiled_with_cxx11_abi())
    except Exception:
        pass
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            f["cuda_available"] = bool(torch.cuda.is_available())
        msgs = [str(w.message) for w in caught]
        if msgs:
            f["cuda_warning"] = " ".join(msgs)[:600]
        if f["cuda_available"]:
            f["device_count"] = int(torch.cuda.device_count())
            for i in range(f["device_count"]):
                p = torch.cuda.get_device_properties(i)
                f["devices"].append(
                    {"name": p.name, "compute_capability": "%d.%d" % (p.major, p.minor), "memory_total_bytes": int(p.total_memory)}
                )
            try:
                f["bf16_supported"] = bool(torch.cuda.is_bf16_supported(including_emulation=False))
            except TypeError:
                f["bf16_supported"] = bool(torch.cuda.is_bf16_supported())
    except Exception as e:
        f["error"] = _err(e)
    return f


class _KernelRequested(Exception):
    pass


def mxfp4_facts(torch_ok):
    f = {
        "path": "unknown",
        "reason": None,
        "warnings": [],
        "device": None,
        "transformers_version": None,
        "kernels_min": None,
        "kernels_max": None,
        "kernel_requested": None,
        "stage": "import",
        "error": None,
    }
    if not torch_ok:
        f.update(path="none", reason="torch is not usable, so transformers cannot load gpt-oss")
        return f
    try:
        import transformers
    except ImportError as e:
        f.update(path="none", reason="transformers is not installed", error=_err(e))
        return f
    except Exception as e:
        f.update(path="unknown", reason="transformers fails to import (%s)" % _err(e), error=_err(e))
        return f
    f["transformers_version"] = getattr(transformers, "__version__", None)
    try:
        from transformers.utils import import_utils as iu

        f["kernels_min"] = getattr(iu, "KERNELS_MIN_VERSION", None)
        f["kernels_max"] = getattr(iu, "KERNELS_MAX_VERSION", None)
    except Exception:
        pass

    captured = []

    class _Capture(logging.Handler):
        def emit(self, record):
            try:
                captured.append(record.getMessage())
            except Exception:
                pass

    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_warning()
    except Exception:
        pass
    logging.getLogger("transformers").addHandler(_Capture(logging.WARNING))

    def _stub(repo_id=None, *args, **kwargs):
        f["kernel_requested"] = repo_id
        raise _KernelRequested(repo_id)

    # Without the kernels package no version of transformers can fetch a kernel, so the (slow)
    # hub integration modules are only imported, to be patched, when kernels is installed.
    try:
        has_kernels = importlib.util.find_spec("kernels") is not None
    except Exception:
        has_kernels = True
    names = ["transformers.quantizers.quantizer_mxfp4"]
    if has_kernels:
        names = ["kernels", "transformers.integrations.hub_kernels", "transformers.integrations.mxfp4"] + names
    for name in names:
        try:
            mod = importlib.import_module(name)
        except Exception:
            continue
        for attr in ("get_kernel", "get_kernel_hub", "get_local_kernel"):
            if hasattr(mod, attr):
                try:
                    setattr(mod, attr, _stub)
                except Exception:
                    pass

    try:
        from transformers import Mxfp4Config
        from transformers.quantizers.quantizer_mxfp4 import Mxfp4HfQuantizer
    except Exception as e:
        f.update(
            path="none",
            reason="transformers %s has no MXFP4 quantizer, so it cannot load gpt-oss (needs >= 4.55.0)" % f["transformers_version"],
            error=_err(e),
        )
        return f

    try:
        from transformers.utils.import_utils import get_current_accelerator

        dev = get_current_accelerator()
        f["device"] = dev.type if dev is not None else "cpu"
    except Exception:
        try:
            import torch

            f["device"] = "cuda" if torch.cuda.is_available() else "cpu"
        except Exception:
            pass

    try:
        quantizer = Mxfp4HfQuantizer(Mxfp4Config(), pre_quantized=True)
    except Exception as e:
        f.update(path="unknown", reason="could not build transformers' MXFP4 quantizer (%s)" % _err(e), error=_err(e), stage="init")
        return f

    def dequantized():
        return bool(getattr(quantizer.quantization_config, "dequantize", False))

    def run(stage, fn):
        f["stage"] = stage
        before = len(captured)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                fn()
                outcome = None
            except _KernelRequested:
                outcome = "kernel"
            except Exception as e:
                outcome = e
        msgs = captured[before:] + [str(w.message) for w in caught]
        f["warnings"].extend(m[:1000] for m in msgs)
        return outcome, msgs

    outcome, msgs = run("validate_environment", lambda: quantizer.validate_environment(device_map="auto"))
    if isinstance(outcome, Exception):
        f.update(path="none", reason="transformers refuses to load the MXFP4 checkpoint here: %s" % outcome, error=_err(outcome))
        return f
    if dequantized():
        f.update(path="bf16", reason=(msgs[-1] if msgs else "transformers set dequantize=True in validate_environment"))
        return f

    before = getattr(quantizer, "_process_model_before_weight_loading", None)
    if before is not None:
        dummy = types.SimpleNamespace(_keep_in_fp32_modules=None, config=None)
        # Exceptions here come from the stand-in model after the dequantize decision: ignored.
        _, msgs = run("process_model_before_weight_loading", lambda: before(dummy, use_kernels=False))
        if dequantized():
            f.update(path="bf16", reason=(msgs[-1] if msgs else "transformers set dequantize=True before loading weights"))
            return f
    f.update(
        path="mxfp4",
        reason="transformers %s keeps the experts in MXFP4 on %s" % (f["transformers_version"], f["device"] or "this device"),
        stage="done",
    )
    return f


def main():
    t0 = time.perf_counter()
    out = {"torch": None, "mxfp4": None}
    try:
        out["torch"] = torch_facts()
        torch_ok = bool(out["torch"].get("installed")) and not (out["torch"].get("error") and not out["torch"].get("version"))
        out["mxfp4"] = mxfp4_facts(torch_ok)
    except BaseException as e:  # report, whatever happens
        out["error"] = _err(e)
    out["duration_s"] = round(time.perf_counter() - t0, 3)
    sys.stdout.write("\n" + MARK + json.dumps(out, default=str) + "\n")
    sys.stdout.flush()


main()
