"""A model on several GPUs, without GPUs: per-GPU trackers merged (fake NVML, fake peak memory),
ranks gathered, the runner's record of a spread load, and the torchrun launch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from bench import results as R
from bench.cli import launch
from bench.models.device import nvml_index
from bench.results.layout import DeviceShare, Layout
from bench.sweep import gpu_set
from bench.sweep.nvml import NvmlMonitor
from bench.sweep.trackers import NvmlTracker, Tracked
from tests.test_monitor import FakeNvml
from tests.test_runner import FakeBackend, _cfg, _new, run_sweep


class FakePeak:
    """torch's peak memory on one GPU, ``per_rep`` bytes each repetition."""

    def __init__(self, per_rep: float):
        self.per_rep, self.tracked = per_rep, Tracked()

    @contextmanager
    def track(self):
        yield
        self.tracked.samples.setdefault("peak_alloc_bytes", []).append(self.per_rep)

    def collect(self):
        out, self.tracked = self.tracked, Tracked()
        return out


def _nvml_tracker(used: int, reasons: int = 0, pids=(1,)) -> NvmlTracker:
    return NvmlTracker(monitor=NvmlMonitor(nvml=FakeNvml(list(pids), reasons=reasons, used=used), interval_s=0.005))


# --------------------------------------------------------------------------------------------
# Per-GPU records
# --------------------------------------------------------------------------------------------


def test_every_gpu_is_recorded_and_memory_summed_over_them():
    tracker = gpu_set.GpuSetTracker({
        "cuda:0": [FakePeak(10e9), _nvml_tracker(used=12 << 30)],
        "cuda:1": [FakePeak(7e9), _nvml_tracker(used=9 << 30, reasons=0x40, pids=(1, 2, 3))],
    })
    for _ in range(3):
        with tracker.track():
            pass
    got = tracker.collect()
    assert got.samples["peak_alloc_bytes"] == [17e9] * 3  # summed repetition by repetition
    assert got.samples["nvml_used_bytes"] == [float((12 << 30) + (9 << 30))]
    gpus = got.info["gpus"]
    assert set(gpus) == {"cuda:0", "cuda:1"}
    assert gpus["cuda:0"]["peak_alloc_bytes"] == [10e9] * 3 and gpus["cuda:1"]["nvml_used_bytes"] == [float(9 << 30)]
    assert gpus["cuda:0"]["nvml"]["nvml_samples"] >= 3 and gpus["cuda:1"]["nvml"]["throttle_reasons"] == ["hardware thermal slowdown"]
    # the run-wide summary is the worst GPU's: what the validity warnings read
    assert got.info["nvml"]["throttle_reasons"] == ["hardware thermal slowdown"]
    assert got.info["nvml"]["other_processes_max"] == 2
    assert got.info["nvml"]["nvml_samples"] == gpus["cuda:0"]["nvml"]["nvml_samples"] + gpus["cuda:1"]["nvml"]["nvml_samples"]


def test_the_next_case_starts_afresh():
    tracker = gpu_set.GpuSetTracker({"cuda:0": [FakePeak(1.0)], "cuda:1": [FakePeak(2.0)]})
    with tracker.track():
        pass
    assert tracker.collect().samples == {"peak_alloc_bytes": [3.0]}
    assert tracker.collect().samples == {}


def test_one_gpu_is_recorded_as_before():
    t = Tracked(samples={"peak_alloc_bytes": [1.0]}, info={"nvml": {"nvml_samples": 2}})
    assert gpu_set.merge_tracked({"cuda:0": t}) is t


def test_a_metric_missing_on_one_gpu_is_not_summed():
    merged = gpu_set.merge_tracked({"cuda:0": Tracked({"peak_alloc_bytes": [1.0]}), "cuda:1": Tracked()})
    assert "peak_alloc_bytes" not in merged.samples and merged.info["gpus"]["cuda:0"]["peak_alloc_bytes"] == [1.0]


def test_ranks_gather_what_each_tracked():
    seen = []

    def gather(own):  # what torch.distributed.all_gather_object gives: every rank's value
        seen.append(own)
        return [own, ("cuda:5", Tracked({"peak_alloc_bytes": [4.0]}, {"nvml": {"nvml_samples": 1}}))]

    local = gpu_set.GpuSetTracker({"cuda:0": [FakePeak(6.0)]})
    tracker = gpu_set.RankGatherTracker("cuda:4", local, gather=gather)
    with tracker.track():
        pass
    got = tracker.collect()
    assert seen[0][0] == "cuda:4"
    assert got.samples["peak_alloc_bytes"] == [10.0] and set(got.info["gpus"]) == {"cuda:4", "cuda:5"}


def test_trackers_for_a_layout(monkeypatch):
    made = []

    def make(i):
        made.append(i)
        return [FakePeak(float(i))]

    pipeline = Layout("pipeline", devices=[DeviceShare("cuda:0"), DeviceShare("cuda:1")])
    [tracker] = gpu_set.trackers_for_layout(pipeline, make=make)
    assert isinstance(tracker, gpu_set.GpuSetTracker) and made == [0, 1]
    assert gpu_set.trackers_for_layout(Layout("tensor-parallel", 2, [DeviceShare("cpu")] * 2), make=make) == []
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "6,7")
    [ranked] = gpu_set.trackers_for_layout(Layout("expert-parallel", 2, [DeviceShare("cuda:6"), DeviceShare("cuda:7")]),
                                           make=make)
    assert isinstance(ranked, gpu_set.RankGatherTracker) and ranked.label == "cuda:7" and made[-1] == 1


def test_nvml_index_follows_cuda_visible_devices():
    assert nvml_index(1, "") == 1
    assert nvml_index(1, "4,5") == 5
    assert nvml_index(0, "GPU-abc,GPU-def") == 0  # UUIDs: left as CUDA numbers them
    assert nvml_index(3, "4,5") == 3


# --------------------------------------------------------------------------------------------
# The runner with a spread load
# --------------------------------------------------------------------------------------------


class SpreadBackend(FakeBackend):
    def load(self, quant, attn):
        record = super().load(quant, attn)
        record.device = "cuda:0"
        record.layout = Layout("pipeline", devices=[DeviceShare("cuda:0", layers=12), DeviceShare("cuda:1", layers=12)],
                               roofline_bytes_per_token=2e9)
        return record


def test_a_spread_load_gets_the_layout_trackers_and_its_roofline(tmp_path):
    asked = []

    def layout_trackers(layout):
        asked.append(layout.kind)
        return [gpu_set.GpuSetTracker({"cuda:0": [FakePeak(1.0)], "cuda:1": [FakePeak(2.0)]})]

    res = _new()
    res.model.bytes_per_token = {"bf16": 8e9}  # what one GPU would read; the layout says 2e9
    run_sweep(_cfg(quants=["bf16"], efforts=["low"], lengths=[4]), SpreadBackend(), res, tmp_path / "r.json",
              progress=False, bandwidth=4e12, trackers=lambda device: pytest.fail("single-GPU trackers"),
              layout_trackers=layout_trackers)
    assert asked == ["pipeline"]
    case = res.cases[0]
    assert case.metrics["peak_alloc_bytes"].samples == [3.0] * 3
    assert set(case.info["gpus"]) == {"cuda:0", "cuda:1"}
    decode = case.metrics["decode_tok_s"].median
    assert case.metrics["roofline_frac"].median == pytest.approx(decode * 2e9 / 4e12)
    saved = R.load(tmp_path / "r.json")
    assert saved.loads[0].layout.devices[1].layers == 12


def test_max_time_follows_rank_0(tmp_path, monkeypatch):
    """Under torchrun each rank has its own clock: rank 0's decision is broadcast to all."""
    from bench.sweep import runner

    decisions = []

    def agree(value):
        decisions.append(value)
        return False  # rank 0 says the budget is spent

    monkeypatch.setattr(runner, "agree", agree)
    res = run_sweep(_cfg(quants=["bf16"], efforts=["low"], lengths=[4]), FakeBackend(), _new(), tmp_path / "r.json",
                    progress=False)
    assert decisions == [True] and [c.status for c in res.cases] == ["skipped"]


def test_a_rank_other_than_0_writes_nothing(tmp_path):
    from bench.sweep.journal import Journal

    journal = Journal(_new(), None)
    journal.start()
    journal.add_load(R.LoadRecord(quant="auto", attn="auto"), {"kind": "transformers"})
    assert list(tmp_path.iterdir()) == [] and journal.path is None


# --------------------------------------------------------------------------------------------
# The torchrun launch
# --------------------------------------------------------------------------------------------


def test_nvlink_multicast_is_off_in_every_process_the_harness_starts(monkeypatch):
    from bench.cli import main

    for name in launch.SAFE_ENV:
        monkeypatch.setenv(name, "1")  # even a user's own setting: a shared host must not get it
    res = CliRunner().invoke(main, ["synthesize", "nope"])
    assert res.exit_code == 2
    for name, value in launch.SAFE_ENV.items():
        assert os.environ[name] == value
    child = subprocess.run([sys.executable, "-c", "import os; print(os.environ['NCCL_NVLS_ENABLE'])"],
                           capture_output=True, text=True)
    assert child.stdout.strip() == "0"
    assert launch.SAFE_ENV == {"NCCL_NVLS_ENABLE": "0", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1", "NVSHMEM_DISABLE_NVLS": "1"}


def test_workers_get_the_options_the_user_gave(monkeypatch, tmp_path):
    from bench.cli import bench as bench_cli
    from bench.cli import main

    seen = {}

    def fake_relaunch(ctx, ranks, gpus):
        seen.update(args=launch.worker_args(ctx), ranks=ranks, gpus=gpus)
        return 7

    monkeypatch.setattr(bench_cli, "relaunch", fake_relaunch)
    monkeypatch.setattr(bench_cli, "fetch_once", lambda *a, **k: seen.setdefault("fetched", True))
    out = tmp_path / "o"
    res = CliRunner().invoke(main, ["bench", "--model", "synthetic:tiny", "--tp", "2", "--device", "cpu", "--reps", "2",
                                    "--out", str(out), "--no-report", "-q"])
    assert res.exit_code == 7, res.output  # rank 0's exit code is the command's
    assert seen["ranks"] == 2 and seen["gpus"] == [] and seen["fetched"]
    args = seen["args"]
    assert args[0] == "bench" and args[-1] == launch.WORKER_FLAG
    pairs = dict(zip(args[1:-1:1], args[2:-1:1]))
    assert pairs["--model"] == "synthetic:tiny" and pairs["--tp"] == "2" and pairs["--device"] == "cpu"
    assert pairs["--reps"] == "2" and pairs["--out"] == str(out)
    assert "--no-report" in args and "-q" not in args and "--quiet" in args
    assert "--efforts" not in args  # defaults stay defaults: each rank derives them alike
    assert not (out / "results.json").exists()  # the parent writes nothing


def test_worker_environment():
    env = launch.worker_env({"PATH": "/bin", "CUDA_VISIBLE_DEVICES": "4,5,6,7", "NCCL_NVLS_ENABLE": "1"},
                            gpus=[1, 3], ranks=2, status_file=Path("/x/s"))
    assert env["CUDA_VISIBLE_DEVICES"] == "5,7"  # the user's numbering, through their own mask
    assert env["NCCL_NVLS_ENABLE"] == "0" and env["NVSHMEM_DISABLE_NVLS"] == "1"
    assert env[launch.STATUS_ENV] == "/x/s" and int(env["OMP_NUM_THREADS"]) >= 1 and env["PATH"] == "/bin"
    cpu = launch.worker_env({"OMP_NUM_THREADS": "3"}, gpus=[], ranks=2, status_file=Path("/s"))
    assert "CUDA_VISIBLE_DEVICES" not in cpu and cpu["OMP_NUM_THREADS"] == "3"
    assert launch.visible_devices([0, 1], None) == "0,1"
    cmd = launch.torchrun_command(2, ["bench", "--tp", "2"], python="py")
    assert cmd == ["py", "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "-m", "bench",
                   "bench", "--tp", "2"]


def test_relaunch_passes_on_rank_0s_exit_code(monkeypatch):
    script = ("import os, pathlib; pathlib.Path(os.environ['GPTOSS_RANK0_STATUS']).write_text('130');"
              "raise SystemExit(1)")  # torchrun says only "failed"; rank 0 left 130 (interrupted)
    monkeypatch.setattr(launch, "torchrun_command", lambda ranks, args: [sys.executable, "-c", script])
    ctx = click.Context(click.Command("bench", params=[]))
    assert launch.relaunch(ctx, 2, []) == 130
    monkeypatch.setattr(launch, "torchrun_command", lambda ranks, args: [sys.executable, "-c", "raise SystemExit(3)"])
    assert launch.relaunch(ctx, 2, []) == 3  # no status left: torchrun's own code


def test_rank_context_leaves_rank_0s_exit_code(tmp_path, monkeypatch):
    from bench.backends.transformers.parallel import ParallelPlan
    from bench.models import ranks

    status = tmp_path / "status"
    monkeypatch.setenv(launch.STATUS_ENV, str(status))
    monkeypatch.setattr(ranks, "init", lambda device: None)
    monkeypatch.setattr(ranks, "finish", lambda: None)
    import signal

    monkeypatch.setattr(signal, "signal", lambda *a: None)
    place = launch.Placement(ParallelPlan("tensor-parallel", ("cpu",), 2), worker=True)
    for exc, code in ((None, 0), (SystemExit(1), 1), (launch.UserError("bad"), 2), (KeyboardInterrupt(), 130)):
        with launch.rank_context(place):  # the worker itself ends quietly: torchrun reports only crashes
            if exc:
                raise exc
        assert status.read_text().strip() == str(code)
    with pytest.raises(RuntimeError):  # a crash stays a crash
        with launch.rank_context(place):
            raise RuntimeError("boom")
    assert status.read_text().strip() == "1"


def test_a_server_takes_no_placement():
    with pytest.raises(launch.UserError, match="drop them with --backend openai"):
        launch.placement("openai", "auto", "0,1", None, None, False)
    assert launch.placement("openai", "auto", None, None, None, False).plan is None


# --------------------------------------------------------------------------------------------
# The real thing: `gptoss bench --tp 2` over gloo on the CPU
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("flag, sharded", [("--tp", {"lm_head"}), ("--ep", {"experts"})])
def test_torchrun_launch_on_the_cpu(tmp_path, flag, sharded):
    """Two ranks over gloo; the parent writes the checkpoint once; rank 0 writes the results.
    What each plan splits depends on the transformers release: the expected parts are the ones
    every release since 5.17 splits (5.24 adds the embedding, and lm_head under --ep)."""
    out = tmp_path / "out"
    env = {**os.environ, "GPTOSS_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "bench", "--model", "synthetic:tiny", flag, "2", "--efforts", "low",
         "--lengths", "6", "--reps", "2", "--max-reps", "2", "--warmup", "0", "--out", str(out), "--no-report", "-q"],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "starting 2 processes" in proc.stderr and proc.stdout.count("results:") == 1  # rank 0 alone reports
    doc = json.loads((out / "results.json").read_text())
    assert doc["config"]["parallel"] in ("tensor-parallel", "expert-parallel") and doc["config"]["ranks"] == 2
    [load] = doc["loads"]
    layout = load["layout"]
    assert layout["world_size"] == 2 and [d["device"] for d in layout["devices"]] == ["cpu", "cpu"]
    assert sharded <= set(layout["sharded"]) and layout["plan"]
    from bench.models.synthetic import SYNTHETIC_MODELS

    assert load["parameters"] == SYNTHETIC_MODELS["tiny"].parameter_count()  # the whole model, not one rank's
    [case] = doc["cases"]
    assert case["status"] == "ok" and case["metrics"]["decode_tok_s"]["n"] == 2
    assert list((tmp_path / "cache" / "synthetic").iterdir())  # written once, by the parent
    R.load(out / "results.json")  # and valid


# --------------------------------------------------------------------------------------------
# Every GPU in the results
# --------------------------------------------------------------------------------------------


def _gpu_fact(index, name="NVIDIA H200", total=143771 << 20):
    return {"index": index, "name": name, "memory_total_bytes": total, "visible": True}


def test_the_results_name_every_gpu_holding_weights():
    from bench.sweep.config import BenchConfig
    from bench.sweep.session import _gpu_bandwidth

    res = _new()
    res.environment = {"facts": {"gpus": [_gpu_fact(0), _gpu_fact(1), _gpu_fact(2, "NVIDIA H100 80GB HBM3", 81559 << 20)]}}
    res.env_summary = {"device": "cuda", "gpu": "NVIDIA H200"}
    bw = _gpu_bandwidth(BenchConfig(devices=[0, 1], parallel="pipeline"), res)
    assert bw == 4.8e12
    assert [g["index"] for g in res.gpu["gpus"]] == [0, 1]
    assert all(g["name"] == "NVIDIA H200" and g["memory_total_bytes"] == 143771 << 20 for g in res.gpu["gpus"])
    # GPUs of two kinds: the roofline takes the slower one's bandwidth
    bw = _gpu_bandwidth(BenchConfig(devices=[1, 2], parallel="pipeline"), res)
    assert bw == res.gpu["gpus"][1]["memory_bandwidth_bytes_s"] < 4.8e12 and "H100" in res.gpu["bandwidth_source"]
    # one GPU: as before, no list
    assert _gpu_bandwidth(BenchConfig(), res) == 4.8e12 and "gpus" not in res.gpu


def test_describe_a_pipeline_on_fake_gpus(monkeypatch):
    import torch
    from types import SimpleNamespace

    from bench.backends.transformers.parallel import ParallelPlan, describe_layout
    from tests.test_parallel import _model

    alloc = {0: 60 << 30, 1: 58 << 30}
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: SimpleNamespace(name="NVIDIA H200", total_memory=143771 << 20))
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda i: alloc[i])
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda i: alloc[i] + (2 << 30))
    device_map = {"model.embed_tokens": 0, **{f"model.layers.{i}": i // 18 for i in range(36)}, "lm_head": 1}
    layout = describe_layout(_model(device_map=device_map), ParallelPlan("pipeline", ("cuda:0", "cuda:1")))
    assert [(d.device, d.layers, d.load_alloc_bytes) for d in layout.devices] == [("cuda:0", 18, 60 << 30), ("cuda:1", 18, 58 << 30)]
    assert layout.devices[1].load_peak_bytes == 60 << 30 and layout.devices[0].name == "NVIDIA H200"
    assert layout.sharded == [] and layout.world_size == 1


def test_layout_lines_show_each_gpu_beside_the_prediction():
    res = _new()
    res.loads = [
        R.LoadRecord(quant="bf16", attn="auto", weights_path="bf16", layout=Layout(
            "pipeline", devices=[DeviceShare("cuda:0", "NVIDIA H200", layers=18, load_alloc_bytes=110 << 30, load_peak_bytes=118 << 30),
                                 DeviceShare("cuda:1", "NVIDIA H200", layers=18, load_alloc_bytes=109 << 30, load_peak_bytes=117 << 30)],
            predicted_load_peak_bytes=124 << 30)),
        R.LoadRecord(quant="auto", attn="auto", weights_path="bf16", layout=Layout("expert-parallel", 2, [DeviceShare("cpu")] * 2)),
        R.LoadRecord(quant="mxfp4", attn="auto", weights_path="mxfp4", layout=Layout(
            "tensor-parallel", 2, [DeviceShare("cuda:0", load_alloc_bytes=1, load_peak_bytes=2)] * 2)),
    ]
    lines = launch.layout_lines(res)
    assert lines[0] == "load/bf16/auto (bf16): pipeline, 2 GPU(s)"
    assert lines[1] == "  cuda:0, NVIDIA H200, 18 layers, 110.0 GiB after load, peak 118.0 GiB (predicted 124.0 GiB)"
    assert "nothing split" in lines[3] and len(lines) == 6  # the CPU load is not listed


# --------------------------------------------------------------------------------------------
# Two GPUs (skipped without them)
# --------------------------------------------------------------------------------------------


def _two_gpus() -> bool:
    import torch

    return torch.cuda.is_available() and torch.cuda.device_count() >= 2


two_gpus = pytest.mark.skipif(not _two_gpus(), reason="needs two CUDA GPUs")


@pytest.mark.gpu
@two_gpus
def test_pipeline_over_two_gpus_gives_the_tokens_of_one(tmp_path):
    import torch

    from bench.backends.transformers import loading
    from bench.backends.transformers.parallel import ParallelPlan
    from bench.models import sources

    resolved = sources.resolve("synthetic:tiny", cache_dir=tmp_path, progress=False)
    ids = torch.tensor([[5, 6, 7, 8, 9, 10]])

    def tokens(loaded):
        with torch.inference_mode():
            out = loaded.model.generate(input_ids=ids.to(loaded.device), max_new_tokens=8, min_new_tokens=8,
                                        do_sample=False, pad_token_id=0)
        return out[0].tolist()

    one = loading.load_model(resolved, device="cuda:0", quant="bf16")
    want = tokens(one)
    loading.unload(one)
    two = loading.load_model(resolved, quant="bf16", plan=ParallelPlan("pipeline", ("cuda:0", "cuda:1")))
    layout = two.record.layout
    assert layout.kind == "pipeline" and [d.device for d in layout.devices] == ["cuda:0", "cuda:1"]
    assert sum(d.layers or 0 for d in layout.devices) == 2
    assert {str(p.device) for p in two.model.parameters()} <= {"cuda:0", "cuda:1"}
    assert all(d.name and d.load_alloc_bytes is not None for d in layout.devices)
    assert two.record.metrics["load_alloc_bytes"] == sum(d.load_alloc_bytes for d in layout.devices)
    assert tokens(two) == want


@pytest.mark.gpu
@two_gpus
@pytest.mark.parametrize("flags, kind", [(["--devices", "0,1"], "pipeline"), (["--ep", "2"], "expert-parallel"),
                                         (["--tp", "2"], "tensor-parallel")])
def test_bench_on_two_gpus_records_both(tmp_path, flags, kind):
    out = tmp_path / "out"
    env = {**os.environ, "GPTOSS_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "bench", "--model", "synthetic:tiny", *flags, "--quant", "bf16",
         "--efforts", "low", "--lengths", "8", "--reps", "2", "--max-reps", "2", "--warmup", "1", "--out", str(out), "--no-report", "-q"],
        capture_output=True, text=True, env=env, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads((out / "results.json").read_text())
    [load] = doc["loads"]
    layout = load["layout"]
    assert layout["kind"] == kind and len(layout["devices"]) == 2
    assert all(d["device"].startswith("cuda:") and d["load_alloc_bytes"] for d in layout["devices"])
    if kind == "expert-parallel":
        assert "experts" in layout["sharded"]
    [case] = doc["cases"]
    assert case["status"] == "ok"
    gpus = case["info"]["gpus"]
    assert len(gpus) == 2 and all(g["nvml"]["nvml_samples"] >= 1 for g in gpus.values())
    per_gpu_peaks = [g["peak_alloc_bytes"] for g in gpus.values()]
    assert case["metrics"]["peak_alloc_bytes"]["samples"] == [float(a + b) for a, b in zip(*per_gpu_peaks)]
    assert doc["gpu"]["gpus"] and len(doc["gpu"]["gpus"]) == 2


def test_a_user_error_in_the_ranks_is_one_sentence_and_exit_2(tmp_path):
    env = {**os.environ, "GPTOSS_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "bench", "--model", "synthetic:tiny", "--tp", "2", "--attn", "sdpa",
         "--efforts", "low", "--lengths", "4", "--reps", "1", "--warmup", "0", "--out", str(tmp_path / "o"), "-q"],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert proc.returncode == 2, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "--attn eager" in errors[0]  # rank 0 says it once
    assert "Traceback" not in proc.stderr and "ChildFailedError" not in proc.stderr


def test_graph_decoding_stays_on_one_gpu(tmp_path):
    from bench.cli import main

    res = CliRunner().invoke(main, ["bench", "--model", "synthetic:tiny", "--tp", "2", "--device", "cpu",
                                    "--decode", "graph", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "--decode graph captures one GPU's forward" in res.stderr


def test_repetitions_follow_rank_0(tmp_path, monkeypatch):
    """Adaptive repetitions stop on a clock too: every rank repeats as often as rank 0 says."""
    from bench.sweep import runner

    said = iter([True, True, None, None, "max_reps"])  # the budget twice, then the repetitions

    monkeypatch.setattr(runner, "agree", lambda value: next(said))
    res = run_sweep(_cfg(quants=["bf16"], efforts=["low"], lengths=[4], reps=3, warmup=0), FakeBackend(), _new(),
                    tmp_path / "r.json", progress=False)
    [case] = res.cases
    assert case.info["repetitions"]["n"] == 2 and case.info["repetitions"]["stopped"] == "max_reps"
