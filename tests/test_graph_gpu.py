"""`--decode graph` on a CUDA GPU: capture, exactness against transformers' eager decoding, past
the sliding window, batches, and the measurements around it (profile, bare loop, energy).
Skipped without CUDA."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from bench import results as R
from bench.backends.transformers.backend import TransformersBackend, TransformersOptions
from bench.backends.transformers.graph import GraphDecoder, check_fidelity, fidelity_steps
from bench.cli import main
from bench.sweep.config import BenchConfig
from bench.sweep.runner import run_case
from bench.sweep.trackers import EnergyTracker, trackers_for
from diagnostics.modelref import ModelRef

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("graph-gpu"))


@pytest.fixture(scope="module", params=["bf16", "auto"])
def backend(request, cache_dir):
    """The tiny model on the GPU, on the bf16 path and on whatever auto gives (MXFP4 with kernels)."""
    b = TransformersBackend(ModelRef.parse("synthetic:tiny"), TransformersOptions(device="cuda:0", cache_dir=cache_dir),
                            progress=False)
    assert b.load(request.param, "auto").status == "ok"
    yield b
    b.unload()


def _ids(batch: int, length: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 1000, (batch, length), generator=g).cuda()


def test_capture_replays_exactly_transformers_tokens(backend):
    model = backend.loaded.model
    ids = _ids(1, 100)
    decoder = GraphDecoder(model, 1, 512)
    decoder.warm_and_capture(ids)
    assert decoder._graph is not None and decoder.capture_s > 0
    fidelity = check_fidelity(decoder, ids, 64)
    assert fidelity.tokens_equal and fidelity.ok, fidelity.to_dict()


def test_exact_across_the_window_filling(backend):
    """A prompt shorter than the sliding window (32 on the tiny model): one graph serves the steps
    before and after the window fills."""
    model = backend.loaded.model
    window = model.config.sliding_window
    ids = _ids(1, 10)
    steps = fidelity_steps(10, window, 400)
    assert 10 + steps > window
    decoder = GraphDecoder(model, 1, 512)
    decoder.warm_and_capture(ids)
    fidelity = check_fidelity(decoder, ids, steps)
    assert fidelity.tokens_equal, fidelity.to_dict()


def test_batch_two_is_exact_per_sequence(backend):
    model = backend.loaded.model
    ids = torch.cat([_ids(1, 100), _ids(1, 100).flip(-1)])
    decoder = GraphDecoder(model, 2, 512)
    decoder.warm_and_capture(ids)
    fidelity = check_fidelity(decoder, ids, 64)
    assert fidelity.tokens_equal and fidelity.ok, fidelity.to_dict()


def test_graph_case_measures_speed_busy_time_and_the_bare_loop(backend):
    key = R.CaseKey("low", 64, 100, cache="static", decode="graph")
    case = run_case(backend, key, BenchConfig(reps=2, warmup=1), trackers_for("cuda:0"), backend.record.weights_path,
                    profile=True)
    assert case.status == "ok", case.message
    assert case.metrics["new_tokens"].median == 64
    assert 0 < case.metrics["gpu_busy_frac"].median <= 1.5
    assert case.info["graph"]["captured"] is True and case.info["graph"]["bare_replay_tok_s"] > 0
    assert case.info["fidelity"]["ok"] is True
    assert case.metrics["peak_alloc_bytes"].median > 0


def test_generate_case_is_profiled_too(backend):
    key = R.CaseKey("low", 32, 100)
    case = run_case(backend, key, BenchConfig(reps=1, warmup=0), trackers_for("cuda:0"), backend.record.weights_path,
                    profile=True)
    assert case.status == "ok" and 0 < case.metrics["gpu_busy_frac"].median <= 1.5
    assert case.info["decode"] == "generate"


def test_longer_case_recaptures_and_shorter_reuses(backend):
    backend.graphs.clear()
    first = backend.prepare(R.CaseKey("low", 16, 100, cache="static", decode="graph")).captured
    same = backend.prepare(R.CaseKey("low", 32, 100, cache="static", decode="graph")).captured
    longer = backend.prepare(R.CaseKey("low", 900, 100, cache="static", decode="graph")).captured
    assert same is first and longer is not first and longer.decoder.max_cache_len >= 1001


def test_energy_counter_reads_joules():
    tracker = EnergyTracker([0])
    x = torch.randn(4096, 4096, device="cuda")
    with tracker.track():
        for _ in range(50):
            x = x @ x
            x = x / x.norm()
        torch.cuda.synchronize()
    samples = tracker.collect().samples
    if not samples:
        pytest.skip("this GPU has no NVML total-energy counter")
    assert samples["energy_j"][0] > 0 and samples["avg_power_w"][0] > 0


def test_cli_default_on_a_gpu_runs_both_decodes(tmp_path, cache_dir):
    """Both decodes by default; graph at every length, generate at the shortest, with the note."""
    out = tmp_path / "run"
    r = CliRunner().invoke(main, ["bench", "--model", "synthetic:tiny", "--device", "cuda", "--reps", "2",
                                  "--cache-dir", cache_dir, "--out", str(out), "--no-report", "--quiet"])
    assert r.exit_code == 0, r.output
    doc = json.loads((out / "results.json").read_text())
    cases = [(c["key"]["decode"], c["key"]["output_len"]) for c in doc["cases"]]
    assert cases == [("generate", 32), ("graph", 32), ("graph", 64)], cases
    assert all(c["status"] == "ok" for c in doc["cases"])
    graph = doc["cases"][1]
    assert "gpu_busy_frac" in graph["metrics"] and graph["info"]["fidelity"]["ok"]
    assert "generate_one_length" in {w["code"] for w in doc["warnings"]}
