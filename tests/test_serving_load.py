"""Sustained load without a server: the arrival schedule, the closed and open loops, the
per-request records (and their columns in the results file), the aggregates, SLOs and goodput,
and the knee of a latency-throughput curve."""

from __future__ import annotations

import asyncio
import json
import statistics

import pytest

from bench.backends.base import LoadPlan
from bench.backends.openai.load import arrival_gaps, drive
from bench.results import CaseKey, CaseResult, ModelInfo, RequestLog, RequestRecord, Results, Stat, load, save
from bench.results.errors import UserError
from bench.results.serving import Slo, aggregate, knee, load_facts


def _take(n, it):
    return [next(it) for _ in range(n)]


# ---- the arrival schedule -----------------------------------------------------------------


def test_poisson_gaps_have_the_asked_mean_and_are_seeded():
    gaps = _take(20000, arrival_gaps(4.0, 1.0, seed=1))
    assert statistics.fmean(gaps) == pytest.approx(0.25, rel=0.03)
    assert statistics.stdev(gaps) == pytest.approx(0.25, rel=0.05)  # exponential: sd = mean
    assert _take(5, arrival_gaps(4.0, 1.0, seed=1)) == gaps[:5]
    assert _take(5, arrival_gaps(4.0, 1.0, seed=2)) != gaps[:5]


@pytest.mark.parametrize("burstiness", [0.25, 4.0])
def test_gamma_gaps_keep_the_rate_and_change_the_spread(burstiness):
    gaps = _take(20000, arrival_gaps(2.0, burstiness, seed=3))
    mean = statistics.fmean(gaps)
    assert mean == pytest.approx(0.5, rel=0.04)
    cv = statistics.stdev(gaps) / mean
    assert cv == pytest.approx(1 / burstiness ** 0.5, rel=0.08)  # gamma of shape k: cv = 1/sqrt(k)


def test_an_infinite_rate_sends_at_once():
    assert _take(3, arrival_gaps(None, 1.0, 0)) == [0.0, 0.0, 0.0]


# ---- the loops ----------------------------------------------------------------------------


class FakeServer:
    """An async send() that takes ``service_s`` and records how many requests were in flight."""

    def __init__(self, service_s: float = 0.01, fail: set[int] = frozenset()):
        self.service_s, self.fail = service_s, set(fail)
        self.in_flight = self.most = 0

    async def send(self, i: int):
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            await asyncio.sleep(self.service_s)
            if i in self.fail:
                raise RuntimeError(f"request {i} failed")
            return i
        finally:
            self.in_flight -= 1


def test_a_closed_loop_keeps_its_clients_busy_and_skips_the_warmup():
    server = FakeServer(0.01)
    out = asyncio.run(drive(LoadPlan("closed", concurrency=4, num_requests=20, warmup_requests=4), server.send))
    assert len(out.sent) == 24 and out.warmup == 4 and len(out.counted) == 20
    assert [s.index for s in out.sent if not s.counted] == [0, 1, 2, 3]
    assert server.most == 4  # never more than the clients, and all of them used
    assert all(s.start >= out.measure_start for s in out.counted)
    # back to back: each client's next request starts as its previous one ends
    assert max(s.end for s in out.counted) - out.measure_start < 20 / 4 * 0.01 * 3


def test_an_open_loop_follows_its_seeded_schedule():
    plan = LoadPlan("poisson", concurrency=0, rate=50.0, num_requests=40, seed=7)
    out = asyncio.run(drive(plan, FakeServer(0.05).send))
    t0 = min(s.start - s.lag for s in out.sent)
    due, expected = 0.0, []
    for gap in _take(40, arrival_gaps(50.0, 1.0, 7)):
        due += gap
        expected.append(due)
    actual = [s.start - t0 for s in out.sent]
    # an open loop does not wait for answers: every request left at its scheduled time
    assert max(abs(a - e) for a, e in zip(actual, expected)) < 0.05
    assert max(s.lag for s in out.sent) < 0.05


def test_a_cap_holds_back_an_open_loop_and_counts_it():
    server = FakeServer(0.05)
    out = asyncio.run(drive(LoadPlan("poisson", concurrency=2, rate=None, num_requests=10), server.send))
    assert server.most == 2 and out.capped > 0 and len(out.counted) == 10


def test_a_duration_bounds_the_measured_period():
    out = asyncio.run(drive(LoadPlan("poisson", concurrency=0, rate=40.0, duration_s=0.5, warmup_s=0.2, seed=1),
                            FakeServer(0.01).send))
    counted = out.counted
    assert 8 <= len(counted) <= 45  # about 20 expected
    assert all(0 <= s.start - out.measure_start < 0.5 + 0.02 for s in counted)
    assert all(s.start < out.measure_start for s in out.sent if not s.counted)


def test_failures_are_recorded_not_raised():
    out = asyncio.run(drive(LoadPlan("closed", concurrency=2, num_requests=6), FakeServer(0.0, fail={2, 4}).send))
    assert [s.index for s in out.sent if s.error is not None] == [2, 4]
    assert all(s.value == s.index for s in out.sent if s.error is None)


# ---- records, aggregates, goodput -----------------------------------------------------------


def _rec(start, ttft, e2e, tokens, error=None, gaps=None):
    gaps = gaps if gaps is not None else ([(e2e - ttft) / (tokens - 1)] * (tokens - 1) if tokens > 1 else [])
    return RequestRecord(start=start, ttft=ttft, e2e=e2e, prompt_tokens=100, output_tokens=tokens, gaps=gaps,
                         chunk_tokens=[1] * tokens, error=error, effort="low")


def _log():
    records = [
        _rec(0.0, 0.1, 1.1, 11),  # tpot 0.1
        _rec(0.5, 0.2, 0.7, 6),  # tpot 0.1
        _rec(1.0, 3.0, 4.0, 11),  # slow first token
        _rec(1.5, None, 0.3, 0, error="the server at X answered HTTP 500"),
    ]
    return RequestLog(records, duration_s=5.0, warmup_requests=2)


def test_aggregates_are_computed_from_the_records():
    m = aggregate(_log(), Slo.parse("ttft_s:2,tpot_s:0.15"))
    assert m["ttft_s"] == [0.1, 0.2, 3.0] and m["e2e_s"] == [1.1, 0.7, 4.0]
    assert m["tpot_s"] == pytest.approx([0.1, 0.1, 0.1])
    assert m["request_throughput"] == [3 / 5.0]
    assert m["total_tok_s"] == [(11 + 6 + 11) / 5.0]
    assert m["error_rate"] == [0.25]
    assert m["ttft_p50_s"] == [0.2] and m["ttft_p99_s"][0] == pytest.approx(0.2 + 0.98 * 2.8)
    assert m["itl_all_p50_s"][0] == pytest.approx(0.1)
    # good: the first two (the third misses TTFT, the fourth failed)
    assert m["goodput_frac"] == [0.5] and m["goodput_req_s"] == [2 / 5.0]
    assert "goodput_frac" not in aggregate(_log())
    facts = load_facts(_log())
    assert facts["requests"] == 4 and facts["failed"] == 1 and facts["warmup_requests"] == 2
    assert facts["sent_req_s"] == pytest.approx(3 / 1.5)
    assert facts["mean_in_flight"] == pytest.approx((1.1 + 0.7 + 4.0 + 0.3) / 5.0, abs=1e-3)


def test_slo_parsing():
    assert Slo.parse("ttft_s:2, tpot_s:15ms").limits == (("ttft_s", 2.0), ("tpot_s", 0.015))
    assert Slo.parse("e2e_s:1.5").text == "e2e_s:1.5"
    for bad, match in [("", "empty"), ("ttft:2", "bound one or more"), ("ttft_s:-1", "positive"), ("ttft_s:abc", "positive")]:
        with pytest.raises(UserError, match=match):
            Slo.parse(bad)


def test_the_records_round_trip_through_columns():
    log = _log()
    log.records[0].chunk_tokens = [1, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1]
    log.records[1].effort = "high"
    d = json.loads(json.dumps(log.to_dict()))
    assert d["n"] == 4 and d["gaps_us"][0][0] == 100000 and d["error"] == [None, None, None, 0]
    assert d["efforts"] == ["high", "low"] and d["effort"] == [1, 0, 1, 1]
    assert d["chunk_tokens"][1] is None  # all ones: not written
    back = RequestLog.from_dict(d)
    assert [r.error for r in back.records] == [r.error for r in log.records]
    assert [r.effort for r in back.records] == [r.effort for r in log.records]
    assert back.records[0].chunk_tokens == log.records[0].chunk_tokens
    assert back.records[2].gaps == pytest.approx(log.records[2].gaps)
    again, first = aggregate(back), aggregate(log)
    assert set(again) == set(first)
    for name, values in first.items():  # pytest.approx takes no dict of lists (pytest >= 9.2)
        assert again[name] == pytest.approx(values), name


def test_a_load_case_is_saved_validated_and_read_back(tmp_path):
    key = CaseKey("low:0.5+high:0.5", 8, 0, mode="fixed", cache="server", quant="server", attn="server", concurrency=0,
                  load="poisson", request_rate=None, dataset="prompts")
    res = Results(model=ModelInfo(id="m", source="server"), backend={"kind": "openai"})
    log = _log()
    res.add_case(CaseResult(key=key, metrics={k: Stat.of(v) for k, v in aggregate(log).items()}, requests=log))
    waves = CaseKey("low", 8, 64, cache="server", quant="server", attn="server")
    res.add_case(CaseResult(key=waves, metrics={"ttft_s": Stat.of([0.1])}))
    path = save(res, tmp_path / "results.json")
    doc = json.loads(path.read_text())
    assert "load" not in doc["cases"][1]["key"] and "requests" not in doc["cases"][1]  # a waves case is as before
    assert doc["cases"][0]["id"].endswith("/c0/poisson-rinf/ds:prompts")
    back = load(path)
    assert back.cases[0].key == key and len(back.cases[0].requests) == 4
    assert back.cases[0].metrics["request_throughput"].median == pytest.approx(0.6)


def test_the_id_of_a_waves_case_is_unchanged():
    assert CaseKey("low", 32, 128).id == "low/out32/in128/b1/fixed/dynamic/auto/auto/c1"
    assert CaseKey("low", 32, 128, load="closed", concurrency=8).id.endswith("/c8/closed")
    assert CaseKey("low", 32, 128, load="gamma", request_rate=2.0, burstiness=0.5).id.endswith("/gamma-r2-b0.5")


# ---- the knee ---------------------------------------------------------------------------------


def test_the_knee_is_the_last_level_before_latency_climbs():
    throughput = [1.0, 2.0, 3.9, 5.6, 6.0, 6.1]
    latency = [0.50, 0.51, 0.55, 0.70, 2.0, 6.0]
    assert knee(throughput, latency) == 3
    assert knee([1, 2, 3, 4], [1, 1.1, 1.2, 1.3]) is None  # a straight line has no knee
    assert knee([1, 2], [1, 5]) is None
    # saturated: throughput falls back while latency climbs; still found in load order
    assert knee([1, 2, 3, 2.9, 2.8], [0.1, 0.11, 0.15, 1.0, 3.0]) == 2


def test_damaged_request_columns_are_one_clear_error(tmp_path):
    from bench.results import ResultsError

    key = CaseKey("low", 8, 0, cache="server", quant="server", attn="server", load="closed")
    res = Results(model=ModelInfo(id="m", source="server"), backend={"kind": "openai"})
    res.add_case(CaseResult(key=key, requests=_log()))
    path = save(res, tmp_path / "results.json")
    doc = json.loads(path.read_text())
    for column, value in (("ttft_s", [0.1, "x", 0.2, None]), ("gaps_us", [[1], [2.5], [], []]), ("e2e_s", [1.0])):
        bad = json.loads(json.dumps(doc))
        bad["cases"][0]["requests"][column] = value
        path.write_text(json.dumps(bad))
        with pytest.raises(ResultsError, match=rf"cases/0/requests: {column} ") as err:
            load(path)
        assert "\n" not in str(err.value)


def test_compare_gates_on_serving_metrics_with_thousands_of_samples():
    """`compare --fail-on` takes the new names; a TTFT of one sample per request (thousands) is
    rank-tested (before, 1 / comb(6000, 3000) overflowed a float)."""
    import random

    from bench.tracking.compare import compare_metric, parse_threshold

    rng = random.Random(0)
    base = [rng.uniform(0.1, 0.2) for _ in range(3000)]
    worse = [x * 1.3 for x in base]
    d = compare_metric("ttft_s", base, worse, parse_threshold("ttft_s:+10%"))
    assert d.verdict == "regression"
    for text in ("request_throughput:-5%", "goodput_frac:-1%", "ttft_p99_s:+10%", "itl_all_p99_s:+10%", "error_rate:+1%"):
        assert parse_threshold(text).metric == text.split(":")[0]
    d = compare_metric("request_throughput", [100.0], [80.0], parse_threshold("request_throughput:-5%"))
    assert d.verdict == "regression"
