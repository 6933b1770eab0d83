"""Where a generated token's time goes: GPU kernel time under ``torch.profiler``.

At batch 1 gpt-oss decoding is often bound by Python and kernel launches on the host rather than
by the GPU. ``kernel_seconds(run)`` runs ``run`` once under the profiler and returns the GPU
kernel time it took (CUPTI; kernels replayed from CUDA graphs included). Divided by the wall time
of the same work, that is how busy the GPU was (``gpu_busy_frac``): near 1 the path is bound by
the GPU, well under 1 by the host CPU, so its speed follows the CPU and varies with it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class KernelTime:
    name: str
    calls: int
    seconds: float


def kernel_seconds(run: Callable[[], object], top: int = 0) -> tuple[float, list[KernelTime]]:
    """GPU kernel seconds of one call of ``run`` (0.0 without CUDA), and the ``top`` kernels by time.

    Only device-side events count, so on a GPU only they are recorded: CPU ops (``aten::*``, a
    compiled graph's call) would carry their kernels' time too, and recording every op of an
    eager decode makes the profiled run many times slower than the run it measures.
    """
    import torch
    from torch.profiler import ProfilerActivity, profile

    cuda = torch.cuda.is_available()
    activities = [ProfilerActivity.CUDA] if cuda else [ProfilerActivity.CPU]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Profiler clears events.*")
        with profile(activities=activities) as prof:
            run()
            if cuda:
                torch.cuda.synchronize()
        averages = prof.key_averages()
    kernels = [e for e in averages
               if str(getattr(e, "device_type", "")).endswith("CUDA") and getattr(e, "self_device_time_total", 0) > 0]
    if cuda and not kernels:
        raise RuntimeError("the profiler recorded no GPU kernels (is CUPTI available to torch here?)")
    total = sum(e.self_device_time_total for e in kernels) / 1e6
    ranked = sorted(kernels, key=lambda e: e.self_device_time_total, reverse=True)[:top]
    return total, [KernelTime(e.key[:120], e.count, e.self_device_time_total / 1e6) for e in ranked]


def gpu_busy_frac(kernel_s: float, wall_s: float) -> float | None:
    """GPU kernel time over wall time of the same work; None when the wall time is zero."""
    return kernel_s / wall_s if wall_s > 0 else None
