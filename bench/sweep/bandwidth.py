"""Memory bandwidth: the roofline's denominator.

Known GPUs come from diagnostics.gpus (datasheet peak figures). ``--measure-bandwidth`` measures
the device instead: a large device-to-device copy timed with CUDA events, counting bytes read plus
bytes written, median of several copies after a warm-up.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Bandwidth:
    bytes_per_s: float | None
    source: str  # "datasheet: <gpu>", "measured: device-to-device copy", or "unknown"


def datasheet(gpu_name: str | None, memory_total_bytes: int | None = None) -> Bandwidth:
    if not gpu_name:
        return Bandwidth(None, "unknown: no GPU")
    from diagnostics.gpus import known_gpu

    spec = known_gpu(gpu_name, memory_total_bytes)
    if spec is None:
        return Bandwidth(None, f"unknown: {gpu_name} is not in the table; use --measure-bandwidth")
    return Bandwidth(float(spec.memory_bandwidth_bytes_s), f"{spec.source} ({spec.name})")


def measure(device: str = "cuda", size_bytes: int = 1 << 30, repeats: int = 10) -> Bandwidth:
    import torch

    n = size_bytes // 2
    src = torch.empty(n, dtype=torch.bfloat16, device=device).normal_()
    dst = torch.empty_like(src)
    for _ in range(3):
        dst.copy_(src)
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        dst.copy_(src)
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1000.0)
    times.sort()
    median = times[len(times) // 2]
    del src, dst
    torch.cuda.empty_cache()
    return Bandwidth(2 * n * 2 / median, f"measured: device-to-device copy of {size_bytes >> 20} MiB, median of {repeats}")
