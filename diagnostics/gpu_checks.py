"""Checks of the GPU itself: present and visible, compute capability, native bf16, MIG, and the
other processes that hold its memory."""

from __future__ import annotations

from diagnostics.check_base import NO_GPU_FIX, CheckResult, Context, primary_gpu, result, visible_gpus
from diagnostics.facts import Facts
from diagnostics.models import gib

def check_gpu(f: Facts, ctx: Context) -> CheckResult:
    t = "GPU"
    shown = visible_gpus(f)
    if shown:
        g = shown[0]
        others = f" (+{len(shown) - 1} more visible)" if len(shown) > 1 else ""
        drv = f"; driver {f.driver.version}, CUDA {f.driver.cuda_version or '?'}" if f.driver.version else ""
        return result("gpu", t, "pass",
                  f"{g.name}{others}: {gib(g.memory_total_bytes)} total, {gib(g.memory_free_bytes)} free, "
                  f"compute capability {g.compute_capability or '?'}{drv}.")
    if f.gpus:
        cvd = f.environment.variables.get("CUDA_VISIBLE_DEVICES", "")
        return result("gpu", t, "fail",
                  f"NVML sees {len(f.gpus)} GPU(s) ({', '.join(g.name for g in f.gpus)}) but CUDA_VISIBLE_DEVICES={cvd!r} hides them all.",
                  "unset CUDA_VISIBLE_DEVICES  (or set it to a listed index, e.g. CUDA_VISIBLE_DEVICES=0)")
    if f.torch.cuda_available and f.torch.devices:
        d = f.torch.devices[0]
        return result("gpu", t, "warn",
                  f"torch sees {d.get('name')} but NVML cannot be read ({f.nvml.error or 'unknown error'}): "
                  "free memory, MIG mode and other processes are unknown.",
                  "pip install -U nvidia-ml-py")
    err = f.nvml.error or ""
    if "LibraryNotFound" in err or "Shared Library Not Found" in err:
        why = "the NVIDIA driver is not installed (NVML library not found)"
    elif err:
        why = f"NVML: {err}"
    else:
        why = "NVML lists no device"
    torch_part = "torch is not installed" if not f.torch.installed else "torch sees no CUDA device"
    return result("gpu", t, "fail", f"No NVIDIA GPU found: {why}, and {torch_part}.", NO_GPU_FIX)


def check_compute_capability(f: Facts, ctx: Context) -> CheckResult:
    t = "Compute capability"
    g = primary_gpu(f)
    if g is None:
        return result("gpu.compute_capability", t, "skip", "No GPU.")
    cc = g.cc
    if cc is None:
        return result("gpu.compute_capability", t, "warn", f"The compute capability of {g.name} could not be read.")
    if cc < (7, 5):
        return result("gpu.compute_capability", t, "warn",
                  f"{g.name} has compute capability {g.compute_capability}: no MXFP4 kernels, so transformers "
                  "dequantizes the experts to bf16 (gpt-oss-20b then needs ~39 GiB).",
                  "Use a GPU with compute capability >= 7.5 (T4, L4, A10, A100, H100, ...).")
    return result("gpu.compute_capability", t, "pass", f"{g.name}: {g.compute_capability}, enough for the MXFP4 kernels.")


def check_bf16(f: Facts, ctx: Context) -> CheckResult:
    t = "Native bf16"
    g = primary_gpu(f)
    if g is None or g.cc is None:
        return result("gpu.bf16", t, "skip", "No GPU." if g is None else "Compute capability unknown.")
    if g.cc < (8, 0):
        return result("gpu.bf16", t, "warn",
                  f"{g.name} (compute capability {g.compute_capability}) has no native bf16: gpt-oss's bf16 "
                  "layers (attention, router, lm_head) run emulated and slower.",
                  "Nothing to install; a GPU with compute capability >= 8.0 (L4, A10, A100, H100) runs bf16 natively.")
    return result("gpu.bf16", t, "pass", f"{g.name} runs bf16 natively.")


def check_mig(f: Facts, ctx: Context) -> CheckResult:
    t = "MIG mode"
    shown = visible_gpus(f)
    if not shown:
        return result("gpu.mig", t, "skip", "No GPU read through NVML.")
    on = [g for g in shown if g.mig_mode]
    if on:
        g = on[0]
        return result("gpu.mig", t, "warn",
                  f"MIG is enabled on GPU {g.index} ({g.name}): CUDA sees a MIG slice with only part of the "
                  "memory and bandwidth; the memory figures here are for the whole GPU.",
                  f"Use a whole GPU, or (admin, no jobs running) `sudo nvidia-smi -i {g.index} -mig 0` and reset the GPU.")
    return result("gpu.mig", t, "pass", "MIG is off (or not supported) on the visible GPU(s).")


def check_processes(f: Facts, ctx: Context) -> CheckResult:
    t = "Other processes on the GPU"
    shown = visible_gpus(f)
    if not shown:
        return result("gpu.processes", t, "skip", "No GPU read through NVML.")
    others = [(g, p) for g in shown for p in g.processes if not p.this_process]
    mine = [(g, p) for g in shown for p in g.processes if p.this_process]
    if others:
        held = sum(p.used_bytes or 0 for _, p in others)
        listing = ", ".join(
            f"pid {p.pid}{' ' + p.name if p.name else ''} {gib(p.used_bytes) if p.used_bytes is not None else '(memory unknown)'} on GPU {g.index}"
            for g, p in others[:5]
        )
        more = f" and {len(others) - 5} more" if len(others) > 5 else ""
        return result("gpu.processes", t, "warn",
                  f"{len(others)} other process(es) hold {gib(held)} of GPU memory ({listing}{more}): less memory "
                  "for the model, and benchmark numbers shared with them.",
                  "Stop them (`nvidia-smi` lists them; `kill <pid>`), or restart the runtime.")
    if mine:
        held = sum(p.used_bytes or 0 for _, p in mine)
        return result("gpu.processes", t, "warn",
                  f"This Python process already holds {gib(held)} on the GPU (a model loaded earlier?).",
                  "del model; import gc; gc.collect(); torch.cuda.empty_cache()   # or restart the runtime")
    return result("gpu.processes", t, "pass", "No other process uses the GPU.")
