"""The openai backend end to end against a real `transformers serve` on loopback, serving the
tiny synthetic checkpoint on CPU, offline. One server process for the module (~5 s to start)."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from types import SimpleNamespace

import pytest

from bench.backends.openai.backend import OpenAIBackend, OpenAIOptions
from bench.backends.openai.errors import ServerError
from bench.results import LOAD_METRICS, CaseKey
from bench.backends.timing import concurrent_samples, generation_metrics

from tests.openai_helpers import server_key, server_options, RecordingProxy, ServeProcess, write_tiny_checkpoint

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

SENTINEL = "sk-SENTINEL-do-not-leak-7f3a9c"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    ckpt, how = write_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny")
    server = ServeProcess(ckpt, tmp_path_factory.mktemp("serve"))
    server.written_by = how
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def server(served):
    served.ensure_running()  # the stopped-server test may have run first under another order
    return served


def _cfg(base_url: str, **kw) -> OpenAIOptions:
    return server_options(base_url, 60.0, **kw)


def _key(**kw) -> CaseKey:
    return server_key(dict(effort="low", output_len=16, prompt_len=160), **kw)


def _run_case(backend: OpenAIBackend, key: CaseKey, reps: int = 1):
    case = backend.prepare(key)
    case.once(counted=False)  # warm-up
    waves = [case.once().timings for _ in range(reps)]
    return waves, SimpleNamespace(info=case.info(), samples={})


def test_load_checks_the_server_and_finds_the_fields_it_accepts(server):
    b = OpenAIBackend(str(server.checkpoint), _cfg(server.base_url))
    assert b.describe()["server"] is None  # nothing known before load
    record = b.load("server", "server")
    assert (record.quant, record.attn, record.weights_path, record.status) == ("server", "server", None, "ok")
    assert set(record.metrics) <= set(LOAD_METRICS) and "load_s" not in record.metrics
    assert record.metrics["first_token_cold_s"] > 0
    d = b.describe()
    assert d["kind"] == "openai" and d["base_url"] == server.base_url
    # The server names itself (its `owned_by`); what it says is its own business, not a contract.
    assert isinstance(d["server"], str) and d["server"]
    # transformers serve refuses min_tokens/ignore_eos (422) and takes generation_config instead
    assert sorted(d["dropped_fields"]) == ["ignore_eos", "min_tokens"]
    assert d["fixed_length"] == "generation_config"
    assert d["stream_usage"] is True
    info = b.model_info()
    assert info.source == "server" and info.synthetic is True and info.path == str(server.checkpoint.resolve())
    assert info.parameters and info.parameters > 0


def test_fixed_mode_gets_exactly_the_tokens_asked(server):
    b = OpenAIBackend(str(server.checkpoint), _cfg(server.base_url))
    b.load("server", "server")
    key = _key(output_len=24, prompt_len=160)
    waves, extras = _run_case(b, key, reps=2)
    assert len(waves) == 2 and all(len(w) == 1 for w in waves)
    for (t,) in waves:
        assert t.new_tokens == 24
        assert t.prompt_tokens == 160  # sized with the server's own count
        assert t.stop_reason == "length"
        assert t.start <= t.arrivals[0] and t.arrivals == sorted(t.arrivals) and t.end >= t.arrivals[-1]
        m = generation_metrics(t)
        assert {"ttft_s", "decode_tok_s", "itl_p50_s", "e2e_s"} <= set(m)
    info = extras.info
    assert info["token_source"] == "usage"
    assert info["prompt_sizing"] == "server" and info["prompt_tokens"] == [160]
    assert info["completion_tokens"] == {"min": 24, "max": 24}
    assert info["stop_reasons"] == {"length": 2}
    assert info["fixed_length"] == "generation_config"
    assert "note" not in info and "prompt_note" not in info
    # random weights never write harmony markers, and transformers serve strips special tokens
    # without a response template: no channel separation here
    assert info["channels"] == "unavailable" and all(not t.channel_tokens for (t,) in waves)


def test_a_prompt_shorter_than_the_template_is_noted(server):
    b = OpenAIBackend(str(server.checkpoint), _cfg(server.base_url))
    b.load("server", "server")
    key = _key(prompt_len=10, output_len=4)
    (wave,), extras = _run_case(b, key)
    assert wave[0].prompt_tokens > 10
    assert "not the 10 asked" in extras.info["prompt_note"]


def test_natural_mode_sends_no_exact_length_fields(server):
    with RecordingProxy(server.port) as proxy:
        b = OpenAIBackend(str(server.checkpoint), _cfg(proxy.base_url, natural_cap=12))
        b.load("server", "server")
        key = _key(mode="natural", output_len=40)
        (wave,), extras = _run_case(b, key)
    (t,) = wave
    assert 1 <= t.new_tokens <= 12
    assert t.stop_reason in ("length", "stop")
    body = proxy.chat_bodies[-1]
    assert body["max_tokens"] == 12  # natural_cap wins over the output length
    assert not {"min_tokens", "ignore_eos", "generation_config"} & set(body)
    assert "fixed_length" not in extras.info and extras.info["token_source"] == "usage"


def test_reasoning_effort_and_sampling_fields_are_sent(server):
    with RecordingProxy(server.port) as proxy:
        b = OpenAIBackend(str(server.checkpoint), _cfg(proxy.base_url, seed=7))
        b.load("server", "server")
        key = _key(effort="high", output_len=8)
        _run_case(b, key)
    body = proxy.chat_bodies[-1]
    assert body["reasoning_effort"] == "high"
    assert body["chat_template_kwargs"] == {"reasoning_effort": "high"}  # what transformers serve renders
    assert body["temperature"] == 0 and body["seed"] == 7
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["max_tokens"] == 8
    assert json.loads(body["generation_config"]) == {"max_new_tokens": 8, "min_new_tokens": 8, "do_sample": False}
    assert body["model"] == str(server.checkpoint)
    assert "min_tokens" not in body  # refused by this server at load, not sent again


def test_the_effort_reaches_the_servers_chat_template(server):
    """transformers serve ignores a top-level reasoning_effort but renders chat_template_kwargs:
    the server's prompt count follows the effort exactly as the checkpoint's own template does.
    (The real efforts are one token each here, so an effort of several words makes it visible.)"""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(server.checkpoint), local_files_only=True)
    b = OpenAIBackend(str(server.checkpoint), _cfg(server.base_url))
    b.load("server", "server")
    counts = {}
    for effort in ("low", "high", "low low low low"):
        local = tok.apply_chat_template([{"role": "user", "content": "Hello there"}], tokenize=True,
                                        add_generation_prompt=True, reasoning_effort=effort)
        local = local["input_ids"] if hasattr(local, "keys") else local
        counts[effort] = b.server_prompt_tokens(effort, "Hello there")
        assert counts[effort] == len(local)
    assert counts["low low low low"] == counts["low"] + 3


def test_concurrent_requests_overlap_in_time(server):
    b = OpenAIBackend(str(server.checkpoint), _cfg(server.base_url))
    b.load("server", "server")
    key = _key(output_len=48, concurrency=2)
    (wave,), extras = _run_case(b, key)
    assert len(wave) == 2
    a, c = wave
    assert max(a.start, c.start) < min(a.end, c.end)  # both in flight at once
    assert a.new_tokens == c.new_tokens == 48
    samples = concurrent_samples(wave)
    assert len(samples["ttft_s"]) == 2 and len(samples["total_tok_s"]) == 1
    assert extras.info["stop_reasons"] == {"length": 2}


def test_wrong_model_name_is_a_clear_error(server):
    b = OpenAIBackend("no-such-model", _cfg(server.base_url))
    with pytest.raises(ServerError) as err:
        b.load("server", "server")
    msg = str(err.value)
    assert "does not serve model 'no-such-model'" in msg
    assert str(server.checkpoint) in msg  # transformers serve names the model it is pinned to
    assert "--model" in msg and "\n" not in msg


def test_a_stream_cut_in_the_middle_is_an_error(server):
    with RecordingProxy(server.port, cut_after_events=3) as proxy:
        b = OpenAIBackend(str(server.checkpoint), _cfg(proxy.base_url))
        with pytest.raises(ServerError, match="cut in the middle"):
            b.load("server", "server")


def test_the_api_key_is_sent_but_never_recorded(server, monkeypatch, caplog):
    monkeypatch.setenv("GPTOSS_TEST_KEY", SENTINEL)
    caplog.set_level(logging.DEBUG)
    with RecordingProxy(server.port) as proxy:
        b = OpenAIBackend(str(server.checkpoint), _cfg(proxy.base_url, api_key_env="GPTOSS_TEST_KEY"))
        record = b.load("server", "server")
        key = _key(output_len=4)
        (wave,), extras = _run_case(b, key)
        bad = OpenAIBackend("no-such-model", _cfg(proxy.base_url, api_key_env="GPTOSS_TEST_KEY"))
        with pytest.raises(ServerError) as err:
            bad.load("server", "server")
    assert all(r["headers"].get("Authorization") == f"Bearer {SENTINEL}" for r in proxy.requests)
    dumped = json.dumps({
        "backend": b.describe(), "model": b.model_info().to_dict(), "load": record.to_dict(),
        "info": extras.info, "samples": extras.samples, "config": asdict(b.options),
    })
    assert SENTINEL not in dumped and SENTINEL not in repr(b)
    assert SENTINEL not in str(err.value) and SENTINEL not in caplog.text


def test_sustained_load_closed_loop_of_8_and_a_poisson_rate_with_an_slo_report(server, tmp_path):
    """Issue 16, end to end: `gptoss bench --load closed --concurrency 8` and `--load poisson`
    against the real server, goodput against an SLO, and the report with its plot."""
    import subprocess
    import sys

    def bench(out, *args):
        proc = subprocess.run(
            [sys.executable, "-c", "from bench.cli import main; main()", "bench", "--backend", "openai",
             "--base-url", server.base_url, "--model", str(server.checkpoint), "--efforts", "low", "--lengths", "6",
             "--prompt-lengths", "40", "--slo", "ttft_s:30,tpot_s:5", "--out", str(out), "--quiet", "--timeout", "120", *args],
            capture_output=True, text=True, timeout=400,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        return json.loads((out / "results.json").read_text()), (out / "report.md").read_text()

    doc, md = bench(tmp_path / "closed", "--load", "closed", "--concurrency", "8", "--num-requests", "16", "--warmup", "8")
    (case,) = doc["cases"]
    assert case["status"] == "ok", case["message"]
    req = case["requests"]
    assert req["n"] == 16 and req["warmup_requests"] == 8 and req["output_tokens"] == [6] * 16
    assert all(t is not None and t > 0 for t in req["ttft_s"]) and "error" not in req
    assert all(len(g) >= 1 for g in req["gaps_us"])  # every token timed on its own chunk(s)
    m = case["metrics"]
    assert m["request_throughput"]["median"] > 0 and m["error_rate"]["median"] == 0
    assert m["goodput_frac"]["median"] == 1.0 and m["ttft_s"]["n"] == 16
    assert case["info"]["load"]["mean_in_flight"] > 1.5  # the 8 clients overlapped on the server
    assert "Serving load" in md and "within SLO" in md

    doc, md = bench(tmp_path / "poisson", "--load", "poisson", "--request-rate", "2", "--num-requests", "8", "--warmup", "0")
    (case,) = doc["cases"]
    assert case["status"] == "ok", case["message"]
    assert case["key"]["request_rate"] == 2 and case["requests"]["n"] == 8
    assert case["info"]["schedule"]["schedule_lag_p99_s"] < 0.5
    assert case["metrics"]["goodput_req_s"]["median"] > 0


def test_a_stopped_server_refuses_the_connection(served):
    """Runs last in file order: stops the shared server (a later test would restart it)."""
    served.ensure_running()
    b = OpenAIBackend(str(served.checkpoint), _cfg(served.base_url))
    b.load("server", "server")
    key = _key(output_len=4)
    case = b.prepare(key)
    served.stop()
    with pytest.raises(ServerError, match="connection refused"):
        case.once()
    with pytest.raises(ServerError, match="connection refused"):
        OpenAIBackend(str(served.checkpoint), _cfg(served.base_url)).load("server", "server")
