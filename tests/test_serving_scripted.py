"""The load generator against servers whose behaviour is known: a scripted aiohttp server in its
own process that holds a fixed time to first token and a fixed gap between tokens, a server that
trickles its headers, and the command line end to end (results file, report, exit codes).

Tolerances (2 shared CPU cores): nothing may arrive before the server sends it, so every TTFT is
at least the scripted one (less 2 ms of clock granularity); the median may exceed it by at most
60 ms of client and scheduling overhead. TPOT may exceed the scripted gap by the server's own
sleep overshoot (at most 8 ms a token here). An open loop must send each request within 50 ms of
its seeded arrival time (p99). A closed loop's throughput must match Little's law
(clients / mean end-to-end time) within 15%.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bench.backends.openai.backend import OpenAIBackend
from bench.backends.openai.errors import ServerError
from bench.backends.openai.load import arrival_gaps
from bench.sweep.config import BenchConfig
from bench.sweep.runner import run_case
from tests.openai_helpers import HOST, server_key, server_options
from tests.scripted_server import MODEL, ScriptedServer

TTFT, ITL = 0.15, 0.01


@pytest.fixture(scope="module")
def scripted():
    with ScriptedServer(ttft=TTFT, itl=ITL) as server:
        yield server


def _backend(url: str, timeout: float = 10.0, **kw) -> OpenAIBackend:
    b = OpenAIBackend(MODEL, server_options(url, timeout, **kw))
    b.load("server", "server")
    return b


def _case(b, load: str, cfg_kw: dict, **key_kw):
    cfg = BenchConfig(backend="openai", base_url="http://x/v1", load=load, **cfg_kw)
    key = server_key(dict(effort="low", output_len=12, prompt_len=40), load=load, **key_kw)
    return run_case(b, key, cfg, [], None)


def test_a_closed_loop_measures_the_scripted_latency(scripted):
    b = _backend(scripted.base_url)
    case = _case(b, "closed", dict(num_requests=24, warmup=4, slo="ttft_s:0.5"), concurrency=4)
    assert case.status == "ok", case.message
    log = case.requests
    assert len(log) == 24 and log.warmup_requests == 4
    ttfts = [r.ttft for r in log.records]
    assert min(ttfts) >= TTFT - 0.002
    assert case.median("ttft_s") <= TTFT + 0.06
    assert ITL <= case.median("tpot_s") <= ITL + 0.008
    assert all(r.output_tokens == 12 and r.ok for r in log.records)
    e2e = case.metrics["e2e_s"].mean
    assert case.median("request_throughput") == pytest.approx(4 / e2e, rel=0.15)  # Little's law
    assert case.median("goodput_frac") == 1.0 and case.median("error_rate") == 0.0
    assert case.info["load"]["mean_in_flight"] == pytest.approx(4, rel=0.15)


def test_an_open_loop_keeps_its_rate_whatever_the_latency(scripted):
    b = _backend(scripted.base_url)
    rate = 20.0  # 20 req/s with 0.26 s answers: about 5 in flight, never waited for
    case = _case(b, "poisson", dict(num_requests=40, warmup=0, seed=3, slo="ttft_s:0.1"),
                 concurrency=0, request_rate=rate)
    assert case.status == "ok", case.message
    starts = [r.start for r in case.requests.records]
    due, expected = 0.0, []
    for gap in [g for g, _ in zip(arrival_gaps(rate, 1.0, 3), range(40))]:
        due += gap
        expected.append(due)
    offset = expected[0] - starts[0]  # the measured period starts at the first request
    assert max(abs(s + offset - e) for s, e in zip(starts, expected)) < 0.05
    assert case.info["schedule"]["schedule_lag_p99_s"] < 0.05
    assert min(r.ttft for r in case.requests.records) >= TTFT - 0.002
    # every request misses a TTFT bound below the scripted latency: no goodput at all
    assert case.median("goodput_frac") == 0.0 and case.median("goodput_req_s") == 0.0


def test_a_duration_and_a_warmup_period(scripted):
    b = _backend(scripted.base_url)
    case = _case(b, "closed", dict(duration_s=1.0, warmup_s=0.5), concurrency=2)
    log = case.requests
    assert log.warmup_requests >= 2
    assert all(0 <= r.start < 1.0 for r in log.records)
    assert 4 <= len(log) <= 16  # about 2 clients x 1 s / 0.26 s


def test_effort_mix_and_dataset_are_sent_per_request(scripted, tmp_path):
    data = tmp_path / "p.jsonl"
    data.write_text('{"prompt": "one two three", "output_len": 3}\n'
                    '{"messages": [{"role": "user", "content": "four"}], "reasoning_effort": "high"}\n')
    b = _backend(scripted.base_url, dataset=str(data))
    case = _case(b, "closed", dict(num_requests=20, warmup=0, seed=1), concurrency=2, effort="low:0.5+medium:0.5",
                 dataset="p", prompt_len=0)
    assert case.status == "ok", case.message
    recs = case.requests.records
    assert [r.output_tokens for r in recs[:4]] == [3, 12, 3, 12]  # file order; the case's length without one
    assert {r.effort for r in recs[1::2]} == {"high"}  # the line's own effort wins
    assert {r.effort for r in recs[0::2]} == {"low", "medium"}  # drawn from the mix
    assert case.info["dataset"] == {"name": "p", "prompts": 2} and case.info["effort_mix"] == {"low": 0.5, "medium": 0.5}


def test_failed_requests_count_as_errors_and_all_failing_is_an_error(scripted):
    b = _backend(scripted.base_url, timeout=0.2)  # below the scripted answer time: every request times out
    case = _case(b, "closed", dict(num_requests=4, warmup=0), concurrency=2)
    assert case.status == "error" and "all 4 requests of the case failed" in case.message
    assert "took longer than 0.2 s (--timeout)" in case.message


class TrickleServer:
    """Accepts, then sends a valid HTTP header one byte every ``pause_s`` (never finishing in time)."""

    def __init__(self, pause_s: float = 0.25):
        self.pause_s = pause_s
        self.sock = socket.socket()
        self.sock.bind((HOST, 0))
        self.sock.listen(8)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.sock.getsockname()[1]}/v1"

    def _serve(self):
        self.sock.settimeout(0.2)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn):
        header = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nX-Padding: " + b"x" * 400 + b"\r\n\r\n"
        with conn:
            for byte in header:
                if self.stop.is_set():
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return
                time.sleep(self.pause_s)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=5)
        self.sock.close()


def test_timeout_bounds_the_whole_request_against_a_trickling_server():
    """Issue 11: one header byte at a time never trips a per-read timeout; --timeout bounds the
    whole request (before, the run went on for minutes)."""
    with TrickleServer(pause_s=0.25) as trickle:
        b = OpenAIBackend("m", server_options(trickle.base_url, 1.5))
        started = time.monotonic()
        with pytest.raises(ServerError) as err:
            b.load("server", "server")
        took = time.monotonic() - started
    assert took < 1.5 + 1.5, took
    assert "within 1.5 s (--timeout)" in str(err.value)


def _bench(*args, cwd=None, timeout=240):
    return subprocess.run([sys.executable, "-c", "from bench.cli import main; main()", "bench", *args],
                          capture_output=True, text=True, timeout=timeout, cwd=cwd)


def test_the_command_line_end_to_end_with_a_key_in_the_query_string(scripted, tmp_path):
    """A sweep of rates into a results file and a report with the latency-throughput plot; a key
    in the query string of --base-url is sent but never written (issue 11)."""
    secret = "sk-QUERY-SECRET-51c9"
    out = tmp_path / "run"
    proc = _bench("--backend", "openai", "--base-url", f"{scripted.base_url}?api_key={secret}", "--model", MODEL,
                  "--load", "poisson", "--request-rate", "4,16,64", "--num-requests", "24", "--efforts", "low",
                  "--lengths", "8", "--slo", "ttft_s:0.25,tpot_s:0.05", "--out", str(out), "--quiet")
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = (out / "results.json").read_text()
    doc = json.loads(text)
    assert [c["key"]["request_rate"] for c in doc["cases"]] == [4, 16, 64]
    assert all(c["requests"]["n"] == 24 for c in doc["cases"])
    assert doc["config"]["base_url"].endswith("?api_key=<redacted>") and doc["backend"]["base_url"].endswith("?api_key=<redacted>")
    assert doc["config"]["slo"] == "ttft_s:0.25,tpot_s:0.05"
    md = (out / "report.md").read_text()
    for where in (text, md, (out / "report.html").read_text(), proc.stdout, proc.stderr):
        assert secret not in where
    assert "latency_throughput.png" in md and (out / "latency_throughput.png").stat().st_size > 8000
    assert "rate (req/s)" in md and "goodput" in md


@pytest.mark.parametrize("args, match", [
    (["--load", "poisson"], "needs --request-rate"),
    (["--load", "closed", "--request-rate", "4"], "--request-rate is for --load poisson or gamma"),
    (["--load", "poisson", "--request-rate", "inf", "--duration", "10s"], "needs --num-requests"),
    (["--load", "poisson", "--request-rate", "fast"], "requests per second"),
    (["--load", "closed", "--burstiness", "0.5"], "--burstiness is for --load gamma"),
    (["--load", "closed", "--num-requests", "5", "--duration", "5s"], "either --num-requests or --duration"),
    (["--slo", "ttft_s:2"], "--slo is for a sustained load"),
    (["--load", "closed", "--slo", "latency:2"], "bound one or more of"),
    (["--load", "closed", "--warmup", "soon"], "--warmup got"),
    (["--load", "closed", "--efforts", "low:x"], "a mix gives every effort a positive share"),
    (["--load", "closed", "--dataset", "DATA", "--prompt-lengths", "64"], "brings its own prompts"),
])
def test_bad_load_options_are_one_sentence_and_exit_2(args, match, tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text('{"prompt": "hi"}\n')
    args = [str(data) if a == "DATA" else a for a in args]
    proc = _bench("--backend", "openai", "--base-url", "http://127.0.0.1:9/v1", "--model", "m", *args,
                  "--out", str(tmp_path / "o"), "--quiet", timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert match in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "o" / "results.json").exists()


def test_a_malformed_dataset_names_its_line_and_exits_2(tmp_path):
    data = tmp_path / "bad.jsonl"
    data.write_text('{"prompt": "fine"}\n\n{"prompt": "also fine", "output_len": 4}\n{"prompt": oops}\n')
    proc = _bench("--backend", "openai", "--base-url", "http://127.0.0.1:9/v1", "--model", "m", "--load", "closed",
                  "--dataset", str(data), "--out", str(tmp_path / "o"), "--quiet", timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"--dataset {data} line 4 is not JSON" in proc.stderr


def test_a_key_in_the_query_string_of_base_url_is_never_written(tmp_path):
    """Issue 11: `--base-url ...?api_key=...` was stored verbatim in results.json (a waves run)."""
    from tests.openai_helpers import FakeOpenAIServer

    secret = "sk-in-the-query-9d2e"
    with FakeOpenAIServer() as fake:
        proc = _bench("--backend", "openai", "--base-url", f"{fake.base_url}?api_key={secret}&api-version=7",
                      "--model", "fake-model", "--efforts", "low", "--lengths", "4", "--reps", "1", "--warmup", "0",
                      "--out", str(tmp_path / "o"), "--quiet", timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for name in ("results.json", "report.md", "report.html"):
        assert secret not in (tmp_path / "o" / name).read_text()
    assert secret not in proc.stdout + proc.stderr
    doc = json.loads((tmp_path / "o" / "results.json").read_text())
    assert doc["config"]["base_url"] == f"{fake.base_url}?api_key=<redacted>&api-version=<redacted>"


def test_redact_url_hides_userinfo_and_query_values_in_any_text():
    from diagnostics.redact import REDACTED as R, redact_text, redact_url

    assert redact_url("http://h:8000/v1?api_key=sk-1&api-version=2") == f"http://h:8000/v1?api_key={R}&api-version={R}"
    assert redact_url("https://TOKEN123@hub.example.com/x") == f"https://{R}@hub.example.com/x"
    assert redact_url("http://127.0.0.1:8000/v1") == "http://127.0.0.1:8000/v1"
    assert redact_text("failed: see http://h/v1?key=s3cret, then retry") == f"failed: see http://h/v1?key={R}, then retry"
    assert redact_text("API_KEY=abc123 and https://bob:pw@host/x") == f"API_KEY={R} and https://{R}@host/x"
