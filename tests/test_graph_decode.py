"""`--decode graph` on the CPU: the capturable step run eagerly (the very code a CUDA graph
captures), against transformers' own decoding on the tiny synthetic gpt-oss."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

from bench import results as R
from bench.backends.transformers import graph as graph_mod
from bench.backends.transformers.backend import TransformersBackend, TransformersOptions
from bench.backends.transformers.graph import GraphDecoder, check_fidelity, eager_reference, fidelity_steps
from bench.backends.transformers.graph_cases import GraphCase, GraphFidelityError, cache_len_for
from bench.cli import main
from bench.sweep.config import BenchConfig, decodes_for
from bench.sweep.journal import Journal
from bench.sweep.runner import run_case, run_sweep
from diagnostics.errors import UserError
from diagnostics.modelref import ModelRef


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    """The tiny model in float32 on the CPU, graph steps run eagerly."""
    b = TransformersBackend(ModelRef.parse("synthetic:tiny"),
                            TransformersOptions(device="cpu", cache_dir=str(tmp_path_factory.mktemp("graph")),
                                                graph_capture=False),
                            progress=False)
    assert b.load("auto", "auto").status == "ok"
    yield b
    b.unload()


@pytest.fixture(scope="module")
def model(backend):
    return backend.loaded.model


def _ids(batch: int, length: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 1000, (batch, length), generator=g)


@pytest.mark.parametrize("batch,prompt", [(1, 40), (1, 8), (2, 20), (1, 31), (1, 32)])
def test_graph_step_equals_transformers_static_cache_decoding(model, batch, prompt):
    """Exactly transformers' tokens and logits, for at least 64 steps and across the point where
    the sliding window (32 on the tiny model) fills."""
    ids = _ids(batch, prompt)
    window = model.config.sliding_window
    steps = fidelity_steps(prompt, window, 200)
    assert steps >= 64 and prompt + steps > window
    decoder = GraphDecoder(model, batch, prompt + steps + 8, capture=False)
    fidelity = check_fidelity(decoder, ids, steps)
    assert fidelity.tokens_equal and fidelity.first_mismatch is None
    assert fidelity.max_abs_logit_diff == 0.0
    assert fidelity.ok and fidelity.reason() is None
    # as close to a cache-free forward as transformers' own StaticCache, and close in absolute terms
    assert fidelity.nocache_cosine_graph == pytest.approx(fidelity.nocache_cosine_static, abs=1e-6)
    assert fidelity.nocache_cosine_graph > 0.999 and fidelity.nocache_top1_graph == 1.0


def test_graph_decode_equals_generate(model):
    """The graph path's greedy tokens are generate's (dynamic cache) tokens, per sequence."""
    ids = _ids(2, 24, seed=3)
    n = 50
    with torch.inference_mode():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=n,
                             min_new_tokens=n, pad_token_id=0)
    got = []
    decoder = GraphDecoder(model, 2, cache_len_for(24, n), capture=False)
    assert decoder.decode(ids, n, lambda t: got.append(t.tolist()) and False) == n
    assert out[:, 24:].T.tolist() == got


def test_decode_stops_when_told_and_refuses_too_long(model):
    ids = _ids(1, 10)
    decoder = GraphDecoder(model, 1, 64, capture=False)
    seen = []
    assert decoder.decode(ids, 30, lambda t: seen.append(t) or len(seen) == 5) == 5
    with pytest.raises(ValueError, match="exceed the cache"):
        decoder.decode(ids, 60)


def test_sliding_update_matches_transformers_in_both_states():
    """The branch-free update against transformers' StaticSlidingWindowLayer: filling, then full."""
    from transformers.cache_utils import StaticSlidingWindowLayer

    window, steps = 6, 14
    theirs = StaticSlidingWindowLayer(max_cache_len=32, sliding_window=window)
    ours = StaticSlidingWindowLayer(max_cache_len=32, sliding_window=window)
    pos = torch.zeros(1, dtype=torch.long)
    g = torch.Generator().manual_seed(1)
    first = torch.randn(1, 2, 1, 4, generator=g)
    theirs.update(first, first)
    ours.update(first, first)
    pos.fill_(1)
    ours.update = graph_mod._sliding_update(pos, torch.arange(window), torch.tensor([window - 1])).__get__(ours)
    for _ in range(steps):
        k, v = torch.randn(1, 2, 1, 4, generator=g), torch.randn(1, 2, 1, 4, generator=g)
        tk, tv = theirs.update(k, v)
        ok, ov = ours.update(k, v)
        pos.add_(1)
        assert torch.equal(tk, ok) and torch.equal(tv, ov)


def test_a_wrong_step_is_caught_by_the_fidelity_check(model, monkeypatch):
    """Fidelity is checked, not assumed: a step whose full-attention layers also see the empty
    slots after the current position (scores 0, values 0) breaks it."""
    ids = _ids(1, 40)
    decoder = GraphDecoder(model, 1, 128, capture=False)
    real = decoder._masks

    def leaky():
        masks = real()
        masks["full_attention"] = torch.zeros_like(masks["full_attention"])
        return masks

    monkeypatch.setattr(decoder, "_masks", leaky)
    fidelity = check_fidelity(decoder, ids, 64)
    assert not fidelity.ok and fidelity.reason()
    assert fidelity.max_abs_logit_diff > 0


def test_drift_beyond_rounding_fails_even_with_the_same_tokens():
    same_tokens = graph_mod.Fidelity(steps=64, tokens_equal=True, first_mismatch=None, max_abs_logit_diff=0.01,
                                     min_logit_cosine=0.9998, nocache_cosine_static=0.998, nocache_cosine_graph=0.9975,
                                     nocache_top1_static=1.0, nocache_top1_graph=1.0)
    assert not same_tokens.ok and "drifts further" in same_tokens.reason()
    rounding = graph_mod.Fidelity(steps=64, tokens_equal=True, first_mismatch=None, max_abs_logit_diff=1e-3,
                                  min_logit_cosine=0.99999, nocache_cosine_static=0.998, nocache_cosine_graph=0.99799)
    assert rounding.ok and rounding.reason() is None


def test_eager_reference_is_transformers_own_decoding(model):
    ids = _ids(1, 12)
    tokens, logits = eager_reference(model, ids, 5, 64)
    assert len(tokens) == len(logits) == 6
    with torch.inference_mode():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=6,
                             min_new_tokens=6, pad_token_id=0)
    assert [t[0] for t in tokens] == out[0, 12:].tolist()


def test_cache_length_and_fidelity_steps():
    assert cache_len_for(128, 128) == 320 and cache_len_for(128, 512) == 704  # 257 and 641 slots, rounded to 64
    assert cache_len_for(10, 1) >= 10 + 65  # room for the fidelity check
    assert fidelity_steps(128, 128, 1000) == 64  # window full from the start
    assert fidelity_steps(20, 128, 1000) == 124  # past the window fill
    assert fidelity_steps(20, 128, 50) == 50  # bounded by the cache


# ---- the backend and the runner ---------------------------------------------------------------


def test_graph_case_through_the_runner(backend):
    key = R.CaseKey("low", 40, 100, batch_size=2, cache="static", decode="graph")
    case = run_case(backend, key, BenchConfig(reps=2, warmup=1), [], "bf16")
    assert case.status == "ok", case.message
    assert case.metrics["new_tokens"].median == 40 and case.metrics["decode_tok_s"].n == 2
    assert case.metrics["kv_cache_bytes"].median > 0
    info = case.info
    assert info["decode"] == "graph" and info["fidelity"]["ok"] and info["fidelity"]["steps"] >= 64
    assert info["graph"]["max_cache_len"] >= 100 + 40 and info["graph"]["captured"] is False
    assert info["graph"]["graphs_captured"] >= 1
    # a second case of the same batch size and a length that fits reuses the capture
    before = backend.graphs.captures
    again = run_case(backend, R.CaseKey("low", 20, 100, batch_size=2, cache="static", decode="graph"),
                     BenchConfig(reps=1, warmup=0), [], "bf16")
    assert again.status == "ok" and backend.graphs.captures == before
    assert again.info["graph"]["capture_number"] == info["graph"]["capture_number"]
    # a longer case gets a cache sized to it, and a shorter one after it gets its own again:
    # the cache length changes the speed, so no case runs on a cache longer than its own
    longer = run_case(backend, R.CaseKey("low", 200, 100, batch_size=2, cache="static", decode="graph"),
                      BenchConfig(reps=1, warmup=0), [], "bf16")
    assert longer.status == "ok" and backend.graphs.captures == before + 1
    assert longer.info["graph"]["max_cache_len"] == cache_len_for(100, 200) == 320
    shorter = run_case(backend, key, BenchConfig(reps=1, warmup=0), [], "bf16")
    assert shorter.info["graph"]["max_cache_len"] == info["graph"]["max_cache_len"] == 192
    assert backend.graphs.captures == before + 2


def test_graph_natural_mode_stops_at_a_stop_token(backend, monkeypatch):
    """Natural mode stops where the model emits a stop token, as generate does."""
    from bench.models import channels

    key = R.CaseKey("low", 30, 100, mode="natural", cache="static", decode="graph")
    case = backend.prepare(key)
    [t] = case.once().timings
    assert t.new_tokens == 30 and t.stop_reason == "length"  # random weights: no stop token
    seen = []
    case.decoder.decode(case.ids, 30, lambda tok: seen.append(int(tok[0])) and False)
    # a token the model emits for the first time after a few others: natural mode must stop there
    at = next((i for i in range(2, len(seen)) if seen[i] not in seen[:i]), 0)
    real = channels.HarmonyTokens.from_tokenizer

    def with_stop(tokenizer):
        h = real(tokenizer)
        monkeypatch.setattr(type(h), "stop_ids", property(lambda self: [seen[at]]), raising=False)
        return h

    monkeypatch.setattr(channels.HarmonyTokens, "from_tokenizer", staticmethod(with_stop))
    [t] = case.once().timings
    assert t.new_tokens == at + 1 and t.stop_reason == "stop"


def test_a_capture_that_fails_fidelity_fails_its_cases_with_the_reason(backend, monkeypatch):
    bad = graph_mod.Fidelity(steps=64, tokens_equal=False, first_mismatch=7, max_abs_logit_diff=1.0, min_logit_cosine=0.5)
    monkeypatch.setattr("bench.backends.transformers.graph_cases.check_fidelity", lambda *a, **k: bad)
    backend.graphs.clear()
    key = R.CaseKey("low", 16, 100, batch_size=3, cache="static", decode="graph")
    with pytest.raises(GraphFidelityError, match="step 7 of 64"):
        GraphCase(backend, key, backend.prepare(R.CaseKey("low", 16, 100)).prompt)
    case = run_case(backend, key, BenchConfig(reps=1, warmup=0), [], "bf16")
    assert case.status == "error" and "step 7 of 64" in case.message
    backend.graphs.clear()


def test_sweep_with_both_decodes_on_the_cpu_backend(backend, tmp_path):
    """Both decode modes through run_sweep, the results file valid against the schema."""
    cfg = BenchConfig(model="synthetic:tiny", efforts=["low"], lengths=[12], prompt_lengths=[100], reps=1, warmup=0,
                      decodes=["generate", "graph"])
    res = R.Results(model=backend.model_info(), run_id="g")
    journal = Journal(res, tmp_path / "results.json")
    backend_loaded = backend.loaded
    backend.load = lambda quant, attn: backend.record  # already loaded: keep it for the next tests
    backend.unload = lambda: None
    try:
        run_sweep(cfg, backend, journal, progress=False, trackers=lambda device: [])
    finally:
        del backend.load, backend.unload
    assert backend.loaded is backend_loaded
    by = {c.key.decode: c for c in res.cases}
    assert set(by) == {"generate", "graph"} and all(c.status == "ok" for c in by.values())
    assert by["graph"].key.cache == "static" and by["graph"].key.id.endswith("/graph")
    loaded = R.load(tmp_path / "results.json")
    assert {c.key.decode for c in loaded.cases} == {"generate", "graph"}


# ---- the decode axis --------------------------------------------------------------------------


def test_decode_defaults_and_refusals():
    assert decodes_for(None, "cuda:0") == ["generate", "graph"]
    assert decodes_for(None, "cpu") == ["generate"]
    assert decodes_for("graph", "cuda:1") == ["graph"]
    with pytest.raises(UserError, match="needs a CUDA GPU"):
        decodes_for("generate,graph", "cpu")
    with pytest.raises(UserError, match="use one or more of generate, graph"):
        decodes_for("eager", "cuda:0")


def test_graph_cases_use_a_static_cache_once():
    cfg = BenchConfig(efforts=["low"], lengths=[128, 512], caches=["dynamic", "static"], decodes=["generate", "graph"])
    keys = cfg.cases()
    graph = [k for k in keys if k.decode == "graph"]
    assert len(keys) == 6 and len(graph) == 2 and {k.cache for k in graph} == {"static"}
    assert keys.index(graph[0]) > max(keys.index(k) for k in keys if k.decode == "generate")


def test_case_keys_from_before_the_decode_axis_load_unchanged():
    old = {"effort": "low", "output_len": 8, "prompt_len": 16, "batch_size": 1, "mode": "fixed", "cache": "dynamic",
           "quant": "auto", "attn": "auto", "concurrency": 1}
    key = R.CaseKey.from_dict(old)
    assert key.decode == "generate" and key.id == "low/out8/in16/b1/fixed/dynamic/auto/auto/c1"
    served = R.CaseKey.from_dict({**old, "quant": "server", "cache": "server", "attn": "server"})
    assert served.decode == "server" and not served.id.endswith("/server")


def test_cli_refuses_graph_on_the_cpu(tmp_path):
    r = CliRunner().invoke(main, ["bench", "--model", "synthetic:tiny", "--device", "cpu", "--decode", "graph",
                                  "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "needs a CUDA GPU" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "o").exists()
