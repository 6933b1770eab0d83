"""Measurements wrapped around each counted repetition, owned by the runner.

``with tracker.track():`` around one repetition, then ``tracker.collect()`` once the case is done
gives per-metric samples and facts for the case's info (and forgets them, ready for the next case).
Which trackers run depends on the device the model landed on: on a CUDA GPU, torch's peak memory
and the NVML sampler; elsewhere (a CPU run, a server) none.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator, Protocol

from bench.sweep.nvml import NvmlMonitor, NvmlWindow


@dataclass
class Tracked:
    samples: dict[str, list[float]] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


class Tracker(Protocol):
    def track(self) -> Any:
        """A context manager around one counted repetition."""

    def collect(self) -> Tracked:
        """What the repetitions tracked since the last call saw; starts afresh."""


class PeakMemoryTracker:
    """torch's peak allocated and reserved bytes on one CUDA device, one sample per repetition."""

    def __init__(self, device: str):
        import torch

        self._cuda = torch.cuda
        self.device = device
        self._tracked = Tracked()

    @contextmanager
    def track(self) -> Iterator[None]:
        self._cuda.reset_peak_memory_stats(self.device)
        yield
        samples = self._tracked.samples
        samples.setdefault("peak_alloc_bytes", []).append(float(self._cuda.max_memory_allocated(self.device)))
        samples.setdefault("peak_reserved_bytes", []).append(float(self._cuda.max_memory_reserved(self.device)))

    def collect(self) -> Tracked:
        out, self._tracked = self._tracked, Tracked()
        return out


class NvmlTracker:
    """NVML sampled in the background during each repetition: device memory in use, throttling and
    other processes on the GPU, summarised over the case (``info.nvml``)."""

    def __init__(self, index: int = 0, monitor: NvmlMonitor | None = None):
        self.monitor = monitor or NvmlMonitor(index=index)
        self._window = NvmlWindow()

    @contextmanager
    def track(self) -> Iterator[None]:
        self.monitor.start()
        try:
            yield
        finally:
            self._window.samples.extend(self.monitor.stop().samples)

    def collect(self) -> Tracked:
        window, self._window = self._window, NvmlWindow()
        if not self.monitor.available:
            return Tracked()
        used = window.max_used_bytes
        return Tracked(samples={"nvml_used_bytes": [float(used)]} if used is not None else {},
                       info={"nvml": window.summary()})


class EnergyTracker:
    """GPU energy of each repetition from NVML's total-energy counter (millijoules since the
    driver loaded), summed over every GPU that holds weights: ``energy_j`` and ``avg_power_w`` per
    repetition. The runner divides the energy by the repetition's tokens (``energy_j_per_tok``).
    Where the counter is missing (before Volta, no NVML) it records nothing."""

    def __init__(self, indices: list[int], nvml: Any = None, clock=time.perf_counter):
        self.clock = clock
        self._nvml = nvml
        self._handles: list[Any] = []
        self._tracked = Tracked()
        try:
            if self._nvml is None:
                import pynvml

                self._nvml = pynvml
            self._nvml.nvmlInit()
            self._handles = [self._nvml.nvmlDeviceGetHandleByIndex(i) for i in indices]
            self._read()  # the counter exists on these GPUs
        except Exception:
            self._handles = []

    def _read(self) -> float:
        """Joules the tracked GPUs have used since their drivers loaded."""
        return sum(self._nvml.nvmlDeviceGetTotalEnergyConsumption(h) for h in self._handles) / 1000.0

    @contextmanager
    def track(self) -> Iterator[None]:
        if not self._handles:
            yield
            return
        joules, started = self._read(), self.clock()
        yield
        joules, seconds = self._read() - joules, self.clock() - started
        samples = self._tracked.samples
        samples.setdefault("energy_j", []).append(joules)
        if seconds > 0:
            samples.setdefault("avg_power_w", []).append(joules / seconds)

    def collect(self) -> Tracked:
        out, self._tracked = self._tracked, Tracked()
        return out


def gpu_trackers(cuda_index: int) -> list[Tracker]:
    """Peak memory, NVML and energy for CUDA device ``cuda_index``; NVML reads the physical GPU
    behind it (CUDA numbers the GPUs ``CUDA_VISIBLE_DEVICES`` lists from 0, NVML does not)."""
    from bench.models.device import nvml_index

    index = nvml_index(cuda_index)
    return [PeakMemoryTracker(f"cuda:{cuda_index}"), NvmlTracker(index), EnergyTracker([index])]


def trackers_for(device: str | None) -> list[Tracker]:
    """The trackers for a model on ``device`` (``cuda:N``, ``cpu``, or None for a server)."""
    if not device or not device.startswith("cuda"):
        return []
    return gpu_trackers(int(device.split(":", 1)[1]) if ":" in device else 0)
