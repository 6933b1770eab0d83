"""Trackers for a model spread over several GPUs: each GPU tracked as on its own, then merged.

A pipeline runs in one process, so one tracker set per GPU suffices. Under torchrun each rank
tracks its own GPU and the ranks gather what they saw (``bench.models.ranks``), so rank 0 holds
every GPU. The merged record keeps the per-GPU figures (``info.gpus``: peak memory, energy and the
NVML summary of each GPU) and sums memory, energy and power over the GPUs, so ``peak_alloc_bytes``,
``nvml_used_bytes`` and ``energy_j`` mean what the run held or used, on one GPU or on several.
"""

from __future__ import annotations

from contextlib import ExitStack, contextmanager
from typing import Any, Callable, Iterator

from bench.models import ranks
from bench.models.device import nvml_index
from bench.results.layout import Layout
from bench.sweep.trackers import Tracked, Tracker, gpu_trackers

SUMMED = ("peak_alloc_bytes", "peak_reserved_bytes", "nvml_used_bytes", "energy_j", "avg_power_w")


def merge_nvml(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """One NVML summary for several GPUs: the worst of each (lowest clock, hottest, every
    throttle reason, most other processes)."""
    def values(key: str) -> list:
        return [s[key] for s in summaries if s.get(key) is not None]

    reasons: list[str] = []
    for s in summaries:
        reasons += [r for r in s.get("throttle_reasons") or [] if r not in reasons]
    return {
        "nvml_samples": sum(values("nvml_samples")),
        "sm_clock_mhz_min": min(values("sm_clock_mhz_min"), default=None),
        "sm_clock_mhz_max": max(values("sm_clock_mhz_max"), default=None),
        "temperature_c_max": max(values("temperature_c_max"), default=None),
        "power_w_max": max(values("power_w_max"), default=None),
        "throttle_reasons": reasons,
        "other_processes_max": max(values("other_processes_max"), default=0),
    }


def merge_tracked(per_device: dict[str, Tracked]) -> Tracked:
    """Several GPUs' records as one: memory metrics summed repetition by repetition, everything
    per GPU under ``info.gpus``."""
    if len(per_device) == 1:
        return next(iter(per_device.values()))
    merged = Tracked(info={"gpus": {}})
    for name in SUMMED:
        series = [t.samples[name] for t in per_device.values() if name in t.samples]
        if series and len(series) == len(per_device) and len({len(s) for s in series}) == 1:
            merged.samples[name] = [float(sum(vals)) for vals in zip(*series)]
    for device, t in per_device.items():
        merged.info["gpus"][device] = {**t.samples, **t.info}
    nvml = [t.info["nvml"] for t in per_device.values() if "nvml" in t.info]
    if nvml:
        merged.info["nvml"] = merge_nvml(nvml)
    return merged


class GpuSetTracker:
    """Trackers of several GPUs, entered together around each repetition, merged on collect."""

    def __init__(self, per_device: dict[str, list[Tracker]]):
        self.per_device = per_device

    @contextmanager
    def track(self) -> Iterator[None]:
        with ExitStack() as stack:
            for trackers in self.per_device.values():
                for tracker in trackers:
                    stack.enter_context(tracker.track())
            yield

    def collect(self) -> Tracked:
        out = {}
        for device, trackers in self.per_device.items():
            t = Tracked()
            for tracker in trackers:
                got = tracker.collect()
                t.samples.update(got.samples)
                t.info.update(got.info)
            out[device] = t
        return merge_tracked(out)


class RankGatherTracker:
    """This rank's GPU tracked locally; on collect, every rank's record gathered and merged."""

    def __init__(self, label: str, local: Tracker, gather: Callable[[Any], list[Any]] = ranks.gather):
        self.label, self.local, self._gather = label, local, gather

    def track(self):
        return self.local.track()

    def collect(self) -> Tracked:
        return merge_tracked(dict(self._gather((self.label, self.local.collect()))))


def trackers_for_layout(layout: Layout, make: Callable[[int], list[Tracker]] = gpu_trackers) -> list[Tracker]:
    """The trackers of a layout's GPUs (none when its devices are not GPUs)."""
    cuda = [d.device for d in layout.devices if d.device.startswith("cuda:")]
    if not cuda:
        return []
    if layout.concurrent:  # each rank holds one device: its own
        own = f"cuda:{ranks.local_rank()}"
        label = f"cuda:{nvml_index(ranks.local_rank())}"
        return [RankGatherTracker(label, GpuSetTracker({own: make(ranks.local_rank())}))]
    return [GpuSetTracker({d: make(int(d.split(":", 1)[1])) for d in cuda})]
