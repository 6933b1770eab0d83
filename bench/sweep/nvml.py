"""NVML sampled in the background during a run: is the measurement valid?

Every ``interval_s`` it reads the SM clock, clock-event (throttle) reasons, temperature, power,
used memory and the other processes on the GPU. The samples become validity warnings in the
results (throttling, contention) and the ``nvml_used_bytes`` metric. Without NVML (a CPU machine,
no driver) it records nothing and says so once.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Any

# Clock-event reasons that mean the GPU slowed down for a reason other than having nothing to do
# (nvmlClocksEventReason*/nvmlClocksThrottleReason* bit values, the same in every NVML release).
THROTTLE_REASONS = {
    0x0000000000000004: "software power cap",
    0x0000000000000008: "hardware slowdown",
    0x0000000000000020: "software thermal slowdown",
    0x0000000000000040: "hardware thermal slowdown",
    0x0000000000000080: "hardware power brake",
}


@dataclass
class NvmlSample:
    sm_clock_mhz: int | None = None
    throttle_mask: int = 0
    temperature_c: int | None = None
    power_w: float | None = None
    used_bytes: int | None = None
    other_processes: int = 0


@dataclass
class NvmlWindow:
    """What was seen between ``start`` and ``stop``."""

    samples: list[NvmlSample] = field(default_factory=list)

    @property
    def max_used_bytes(self) -> int | None:
        used = [s.used_bytes for s in self.samples if s.used_bytes is not None]
        return max(used) if used else None

    def throttle_reasons(self) -> list[str]:
        mask = 0
        for s in self.samples:
            mask |= s.throttle_mask
        return [name for bit, name in THROTTLE_REASONS.items() if mask & bit]

    @property
    def max_other_processes(self) -> int:
        return max((s.other_processes for s in self.samples), default=0)

    def summary(self) -> dict[str, Any]:
        clocks = [s.sm_clock_mhz for s in self.samples if s.sm_clock_mhz]
        temps = [s.temperature_c for s in self.samples if s.temperature_c is not None]
        power = [s.power_w for s in self.samples if s.power_w is not None]
        return {
            "nvml_samples": len(self.samples),
            "sm_clock_mhz_min": min(clocks) if clocks else None,
            "sm_clock_mhz_max": max(clocks) if clocks else None,
            "temperature_c_max": max(temps) if temps else None,
            "power_w_max": max(power) if power else None,
            "throttle_reasons": self.throttle_reasons(),
            "other_processes_max": self.max_other_processes,
        }


class NvmlMonitor:
    """Background NVML sampler for one GPU; inert where NVML is unavailable."""

    def __init__(self, index: int = 0, interval_s: float = 0.1, nvml: Any = None):
        self.index = index
        self.interval_s = interval_s
        self.available = False
        self.error: str | None = None
        self._nvml = nvml
        self._handle = None
        self._lock = threading.Lock()
        self._window = NvmlWindow()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        try:
            if self._nvml is None:
                import pynvml

                self._nvml = pynvml
            self._nvml.nvmlInit()
            self._handle = self._nvml.nvmlDeviceGetHandleByIndex(index)
            self.available = True
        except Exception as exc:  # no driver, no GPU, no pynvml: a fact, not a failure
            self.error = f"{type(exc).__name__}: {exc}"

    def sample(self) -> NvmlSample:
        n, h = self._nvml, self._handle
        s = NvmlSample()
        for attr, read in (
            ("sm_clock_mhz", lambda: n.nvmlDeviceGetClockInfo(h, n.NVML_CLOCK_SM)),
            ("throttle_mask", lambda: int(_clock_event_reasons(n, h))),
            ("temperature_c", lambda: n.nvmlDeviceGetTemperature(h, n.NVML_TEMPERATURE_GPU)),
            ("power_w", lambda: n.nvmlDeviceGetPowerUsage(h) / 1000.0),
            ("used_bytes", lambda: int(n.nvmlDeviceGetMemoryInfo(h).used)),
            ("other_processes", lambda: _other_processes(_processes(n, h), self._pid)),
        ):
            try:
                setattr(s, attr, read())
            except Exception:
                pass
        return s

    def _loop(self) -> None:
        while not self._stop.is_set():
            s = self.sample()
            with self._lock:
                self._window.samples.append(s)
            self._stop.wait(self.interval_s)

    def start(self) -> None:
        """Begin a new window of samples."""
        if not self.available:
            return
        self.stop()
        with self._lock:
            self._window = NvmlWindow()
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="gptoss-nvml", daemon=True)
        self._thread.start()

    def stop(self) -> NvmlWindow:
        """End the window (one last sample taken) and return it."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
            with self._lock:
                self._window.samples.append(self.sample())
        with self._lock:
            return self._window


def _clock_event_reasons(n: Any, h: Any) -> int:
    fn = getattr(n, "nvmlDeviceGetCurrentClocksEventReasons", None) or n.nvmlDeviceGetCurrentClocksThrottleReasons
    return fn(h)


def _other_processes(procs: list, own_pid: int) -> int:
    """Processes on the GPU besides this one. Inside a container NVML reports host pids, so this
    process may not appear under its own pid: then one of the listed processes is taken to be us."""
    others = [p for p in procs if p.pid != own_pid]
    if procs and len(others) == len(procs):
        return len(procs) - 1
    return len(others)


def _processes(n: Any, h: Any) -> list:
    procs = list(n.nvmlDeviceGetComputeRunningProcesses(h))
    try:
        procs += list(n.nvmlDeviceGetGraphicsRunningProcesses(h))
    except Exception:
        pass
    return procs
