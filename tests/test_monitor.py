"""The NVML sampler against a fake NVML: validity facts without a GPU."""
import pytest

from types import SimpleNamespace

from bench.sweep.nvml import NvmlMonitor, NvmlWindow, NvmlSample, _other_processes


class FakeNvml:
    NVML_CLOCK_SM = 1
    NVML_TEMPERATURE_GPU = 0

    def __init__(self, pids, reasons=0, used=10 << 30):
        self.pids, self.reasons, self.used = pids, reasons, used

    def nvmlInit(self):
        pass

    def nvmlDeviceGetHandleByIndex(self, i):
        return object()

    def nvmlDeviceGetClockInfo(self, h, kind):
        return 1980

    def nvmlDeviceGetCurrentClocksEventReasons(self, h):
        return self.reasons

    def nvmlDeviceGetTemperature(self, h, kind):
        return 60

    def nvmlDeviceGetPowerUsage(self, h):
        return 350_000

    def nvmlDeviceGetMemoryInfo(self, h):
        return SimpleNamespace(used=self.used)

    def nvmlDeviceGetComputeRunningProcesses(self, h):
        return [SimpleNamespace(pid=p) for p in self.pids]

    def nvmlDeviceGetGraphicsRunningProcesses(self, h):
        return []


def test_sample_reads_every_field():
    import os

    m = NvmlMonitor(nvml=FakeNvml([os.getpid(), 4242], reasons=0x40 | 0x1))
    assert m.available
    s = m.sample()
    assert (s.sm_clock_mhz, s.temperature_c, s.power_w, s.used_bytes) == (1980, 60, 350.0, 10 << 30)
    assert s.other_processes == 1


def test_window_collects_samples_between_start_and_stop():
    m = NvmlMonitor(nvml=FakeNvml([]), interval_s=0.001)
    m.start()
    window = m.stop()
    assert len(window.samples) >= 1
    assert window.max_used_bytes == 10 << 30
    assert window.summary()["sm_clock_mhz_max"] == 1980


def test_throttle_reasons_ignore_idle_and_name_the_rest():
    w = NvmlWindow([NvmlSample(throttle_mask=0x1), NvmlSample(throttle_mask=0x40 | 0x4)])
    assert w.throttle_reasons() == ["software power cap", "hardware thermal slowdown"]
    assert NvmlWindow([NvmlSample(throttle_mask=0x1)]).throttle_reasons() == []  # GPU idle only


def test_other_processes_in_a_container():
    procs = [SimpleNamespace(pid=p) for p in (900001, 900002)]
    assert _other_processes(procs, own_pid=12) == 1  # host pids: one of them is us
    assert _other_processes([SimpleNamespace(pid=12)], own_pid=12) == 0
    assert _other_processes([], own_pid=12) == 0


def test_without_nvml_it_is_inert():
    class Broken(FakeNvml):
        def nvmlInit(self):
            raise RuntimeError("NVML Shared Library Not Found")

    m = NvmlMonitor(nvml=Broken([]))
    assert not m.available and "NVML" in m.error
    m.start()
    assert m.stop().samples == []


def test_nvml_tracker_summarises_the_repetitions_of_a_case():
    from bench.sweep.trackers import NvmlTracker

    tracker = NvmlTracker(monitor=NvmlMonitor(nvml=FakeNvml(pids=[1, 2], reasons=0x8), interval_s=0.01))
    for _ in range(2):
        with tracker.track():
            pass
    tracked = tracker.collect()
    assert tracked.samples == {"nvml_used_bytes": [float(10 << 30)]}
    assert tracked.info["nvml"]["throttle_reasons"] == ["hardware slowdown"]
    assert tracked.info["nvml"]["nvml_samples"] >= 2
    assert tracker.collect().info["nvml"]["nvml_samples"] == 0  # the next case starts afresh


def test_no_trackers_off_the_gpu():
    from bench.sweep.trackers import trackers_for

    assert trackers_for("cpu") == [] and trackers_for(None) == []


class FakeEnergyNvml(FakeNvml):
    """A total-energy counter (mJ) that advances 500 mJ per read, per GPU."""

    def __init__(self):
        super().__init__([])
        self.reads = 0

    def nvmlDeviceGetTotalEnergyConsumption(self, h):
        self.reads += 1
        return 1_000_000 + 500 * self.reads


def test_energy_tracker_sums_every_gpu_and_reports_power():
    from bench.sweep.trackers import EnergyTracker

    ticks = iter([0.0, 2.0])
    nvml = FakeEnergyNvml()
    tracker = EnergyTracker([0, 1], nvml=nvml, clock=lambda: next(ticks))
    with tracker.track():
        pass
    tracked = tracker.collect()
    # two GPUs, each counter read before and after: (+500 mJ per read) -> 2 GPUs x 2 reads apart
    assert tracked.samples["energy_j"] == [pytest.approx(2.0)]
    assert tracked.samples["avg_power_w"] == [pytest.approx(1.0)]
    assert tracker.collect().samples == {}


def test_energy_tracker_is_inert_without_the_counter():
    from bench.sweep.trackers import EnergyTracker

    tracker = EnergyTracker([0], nvml=FakeNvml([]))  # no nvmlDeviceGetTotalEnergyConsumption
    with tracker.track():
        pass
    assert tracker.collect().samples == {}


def test_single_gpu_trackers_read_the_physical_gpu_behind_cuda_visible_devices(monkeypatch):
    """CUDA numbers the GPUs CUDA_VISIBLE_DEVICES lists from 0; NVML does not: cuda:0 with
    CUDA_VISIBLE_DEVICES=1 is NVML's GPU 1, so its memory and energy are that GPU's."""
    from bench.sweep import trackers as tr

    seen = {}
    monkeypatch.setattr(tr, "PeakMemoryTracker", lambda device: ("peak", device))
    monkeypatch.setattr(tr, "NvmlTracker", lambda index: seen.setdefault("nvml", index))
    monkeypatch.setattr(tr, "EnergyTracker", lambda indices: seen.setdefault("energy", indices))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    made = tr.trackers_for("cuda:0")
    assert made[0] == ("peak", "cuda:0") and seen == {"nvml": 1, "energy": [1]}
    assert tr.trackers_for("cpu") == [] and tr.trackers_for(None) == []
