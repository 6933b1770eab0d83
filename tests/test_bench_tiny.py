"""The real load -> generate -> measure path on the tiny synthetic gpt-oss, on this CPU."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from bench import results as R
from bench.backends.transformers.backend import TransformersBackend, TransformersCase, TransformersOptions
from bench.cli import main
from diagnostics.modelref import ModelRef


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("synthetic-cache"))


@pytest.fixture(scope="module")
def backend(cache_dir):
    b = TransformersBackend(ModelRef.parse("synthetic:tiny"), TransformersOptions(device="cpu", cache_dir=cache_dir),
                            progress=False)
    record = b.load("auto", "auto")
    assert record.status == "ok"
    yield b
    b.unload()


def test_load_record(backend):
    r = backend.record
    assert r.weights_path == "bf16" and r.experts_class == "GptOssExperts"  # no kernels on a CPU
    assert r.attn_implementation == "eager"
    assert r.parameters and r.parameters > 0
    assert r.metrics["load_s"] > 0 and r.metrics["first_token_cold_s"] > 0


@pytest.mark.parametrize("n", [1, 7, 33])
def test_fixed_mode_gives_exactly_n_tokens_with_monotonic_clock(backend, n):
    key = R.CaseKey("medium", n, 128)
    case = backend.prepare(key)
    assert len(case.prompt.ids) == 128
    [t] = case.once().timings
    assert t.new_tokens == n and len(t.arrivals) == n
    assert t.start < t.arrivals[0]
    assert all(a <= b for a, b in zip(t.arrivals, t.arrivals[1:]))
    assert t.end >= t.arrivals[-1]


def test_batch_and_static_cache(backend):
    key = R.CaseKey("low", 5, 100, batch_size=2, cache="static")
    rep = backend.prepare(key).once()
    [t] = rep.timings
    assert t.new_tokens == 5 and t.batch_size == 2
    # KV cache of a static cache is preallocated: at least prompt + new tokens for 2 sequences
    assert rep.samples["kv_cache_bytes"] > 0


def test_natural_mode_counts_channels_and_respects_the_cap(backend):
    key = R.CaseKey("high", 12, 128, mode="natural")
    [t] = backend.prepare(key).once().timings
    assert 1 <= t.new_tokens <= 12
    assert set(t.channel_tokens) >= {"analysis", "final"}
    assert sum(t.channel_tokens.values()) <= t.new_tokens
    assert t.stop_reason in ("stop", "length")


def test_prompts_differ_by_effort(backend):
    texts = {}
    for effort in ("low", "medium", "high"):
        case = backend.prepare(R.CaseKey(effort, 4, 128))
        texts[effort] = backend.loaded.tokenizer.decode(case.prompt.ids)
        assert f"Reasoning: {effort}" in texts[effort]
    assert len(set(texts.values())) == 3


def _bench(out, *extra, cache_dir):
    args = ["bench", "--model", "synthetic:tiny", "--device", "cpu", "--lengths", "4", "--efforts", "low,high",
            "--reps", "2", "--max-reps", "2", "--warmup", "0", "--out", str(out), "--cache-dir", cache_dir, "-q", *extra]
    return CliRunner().invoke(main, args)


def test_cli_end_to_end_and_resume(tmp_path, cache_dir):
    out = tmp_path / "run"
    r = _bench(out, cache_dir=cache_dir)
    assert r.exit_code == 0, r.output
    res = R.load(out / "results.json")
    assert res.complete and [c.status for c in res.cases] == ["ok", "ok"]
    assert all(c.metrics["new_tokens"].samples == [4.0, 4.0] for c in res.cases)
    assert res.model.synthetic and res.model.parameters
    assert {w.code for w in res.warnings} >= {"synthetic", "cpu"}
    assert res.env_summary["device"] == "cpu" and res.env_summary["torch"] == torch.__version__.split("+")[0] or res.env_summary["torch"]
    assert (out / "report.md").exists() and (out / "report.html").exists()
    assert "decode" in r.output  # the summary table

    again = _bench(out, cache_dir=cache_dir)
    assert again.exit_code == 2 and "--resume" in again.output

    before = {c.key.id: c.started_at for c in res.cases}
    resumed = _bench(out, "--resume", "--efforts", "low,medium,high", cache_dir=cache_dir)
    assert resumed.exit_code == 0, resumed.output
    res2 = R.load(out / "results.json")
    assert len(res2.cases) == 3
    for c in res2.cases:
        if c.key.id in before:
            assert c.started_at == before[c.key.id]  # not measured again


def test_oom_case_is_recorded_and_the_sweep_goes_on(tmp_path, cache_dir, monkeypatch):
    original = TransformersCase.once

    def once(self, counted=True):
        if self.key.effort == "high":
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return original(self, counted)

    monkeypatch.setattr(TransformersCase, "once", once)
    r = _bench(tmp_path / "oom", "--efforts", "low,high,medium", cache_dir=cache_dir)
    assert r.exit_code == 0, r.output
    res = R.load(tmp_path / "oom" / "results.json")
    status = {c.key.effort: c.status for c in res.cases}
    assert status == {"low": "ok", "high": "oom", "medium": "ok"}
    assert "out of memory" in [c for c in res.cases if c.status == "oom"][0].message


def test_interrupted_run_keeps_data_and_says_how_to_resume(tmp_path, cache_dir, monkeypatch):
    original = TransformersCase.once

    def once(self, counted=True):
        if self.key.effort == "high":
            raise KeyboardInterrupt
        return original(self, counted)

    monkeypatch.setattr(TransformersCase, "once", once)
    out = tmp_path / "int"
    r = _bench(out, cache_dir=cache_dir)
    assert r.exit_code == 130
    assert "--resume" in r.output
    saved = json.loads((out / "results.json").read_text())
    R.validate(saved)
    assert [c["key"]["effort"] for c in saved["cases"]] == ["low"]
    monkeypatch.setattr(TransformersCase, "once", original)
    assert _bench(out, "--resume", cache_dir=cache_dir).exit_code == 0
    assert R.load(out / "results.json").complete


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--efforts", "extreme"], "--efforts"),
        (["--lengths", "ten"], "--lengths"),
        (["--lengths", "0"], "at least 1"),
        (["--max-time", "soon"], "--max-time"),
        (["--quant", "int4"], "--quant"),
        (["--prompt-lengths", "10"], "shorter than the chat template"),
        (["--concurrency", "4"], "--backend openai"),
        (["--model", "synthetic:huge"], "synthetic"),
        (["--model", "/no/such/folder"], "/no/such/folder"),
    ],
)
def test_bad_input_is_one_sentence_and_exit_2(tmp_path, cache_dir, args, fragment):
    r = _bench(tmp_path / "bad", *args, cache_dir=cache_dir)
    assert r.exit_code == 2, r.output
    assert fragment in r.output
    assert "Traceback" not in r.output


def test_default_plan_on_tiny_runs_one_effort_and_says_why(tmp_path, cache_dir):
    def bench(out, *extra):
        return CliRunner().invoke(main, ["bench", "--model", "synthetic:tiny", "--device", "cpu", "--lengths", "4",
                                         "--reps", "1", "--max-reps", "1", "--warmup", "0", "--out", str(out),
                                         "--cache-dir", cache_dir, "-q", *extra])

    out = tmp_path / "plan"
    r = bench(out)
    assert r.exit_code == 0, r.output
    doc = json.loads((out / "results.json").read_text())
    assert {(c["key"]["effort"], c["key"]["mode"]) for c in doc["cases"]} == {("low", "fixed")}
    assert "one_effort" in {w["code"] for w in doc["warnings"]}
    assert "one effort (low) measures the speed of all" in (out / "report.md").read_text()
    explicit = tmp_path / "explicit"
    r = bench(explicit, "--efforts", "low,high", "--no-report")
    assert r.exit_code == 0, r.output
    doc = json.loads((explicit / "results.json").read_text())
    assert {c["key"]["effort"] for c in doc["cases"]} == {"low", "high"}
    assert "efforts_fixed" in {w["code"] for w in doc["warnings"]}
