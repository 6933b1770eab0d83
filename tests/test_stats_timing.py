import math

import pytest

from bench.results.stats import Stat, percentile
from bench.backends.timing import GenerationTiming, case_samples, concurrent_samples, generation_metrics


def test_stat_on_known_samples():
    s = Stat.of([10.0, 12.0, 11.0, 13.0, 14.0])
    assert s.n == 5
    assert s.median == 12.0
    assert s.mean == 12.0
    assert s.stdev == pytest.approx(math.sqrt(2.5))
    # numpy's linear percentiles of [10..14]: p5 = 10.2, p95 = 13.8
    assert s.p5 == pytest.approx(10.2)
    assert s.p95 == pytest.approx(13.8)
    assert s.samples == [10.0, 12.0, 11.0, 13.0, 14.0]  # raw order kept
    assert s.cv == pytest.approx(math.sqrt(2.5) / 12.0)


def test_stat_single_and_empty_and_nan():
    one = Stat.of([3.0])
    assert (one.n, one.median, one.stdev, one.p5, one.p95) == (1, 3.0, 0.0, 3.0, 3.0)
    assert one.cv is None
    empty = Stat.of([])
    assert empty.n == 0 and empty.median is None
    assert Stat.of([1.0, float("nan"), 3.0]).n == 2


def test_stat_round_trip():
    s = Stat.of([1.0, 2.0, 4.0])
    assert Stat.from_dict(s.to_dict()) == s


def test_percentile_bounds():
    assert percentile([5.0], 50) == 5.0
    assert percentile([1.0, 2.0], 50) == 1.5
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def _timing(start, arrivals, prompt=100, end=None, per=None, batch=1):
    t = GenerationTiming(start=start, prompt_tokens=prompt, batch_size=batch)
    for i, a in enumerate(arrivals):
        t.arrive(per[i] if per else 1, at=a)
    t.end = end if end is not None else arrivals[-1]
    return t


def test_generation_metrics_from_clocks():
    # first token at 0.5 s, then 4 more tokens 0.1 s apart
    t = _timing(0.0, [0.5, 0.6, 0.7, 0.8, 0.9], prompt=100, end=1.0)
    m = generation_metrics(t)
    assert m["ttft_s"] == pytest.approx(0.5)
    assert m["prefill_tok_s"] == pytest.approx(200.0)
    assert m["decode_tok_s"] == pytest.approx(4 / 0.4)
    assert m["itl_p50_s"] == pytest.approx(0.1)
    assert m["itl_p99_s"] == pytest.approx(0.1)
    assert m["e2e_s"] == pytest.approx(1.0)
    assert m["new_tokens"] == 5
    assert m["total_tok_s"] == pytest.approx(5.0)
    assert "analysis_tokens" not in m  # fixed mode: no channels


def test_batch_multiplies_throughput_not_latency():
    t = _timing(0.0, [0.5, 0.6, 0.7], prompt=10, batch=4)
    m = generation_metrics(t)
    assert m["decode_tok_s"] == pytest.approx(4 * 2 / 0.2)
    assert m["prefill_tok_s"] == pytest.approx(4 * 10 / 0.5)
    assert m["itl_p50_s"] == pytest.approx(0.1)


def test_chunks_spread_gap_over_their_tokens():
    # a server chunk of 4 tokens arriving 0.4 s after the first: 4 gaps of 0.1 s
    t = _timing(0.0, [0.2, 0.6], per=[1, 4])
    m = generation_metrics(t)
    assert m["new_tokens"] == 5
    assert m["itl_p50_s"] == pytest.approx(0.1)
    assert m["decode_tok_s"] == pytest.approx(4 / 0.4)


def test_channels_and_time_to_final():
    t = _timing(1.0, [1.1, 1.2, 1.3])
    t.channel_tokens = {"analysis": 2, "final": 1}
    t.first_final_at = 1.3
    m = generation_metrics(t)
    assert m["analysis_tokens"] == 2 and m["final_tokens"] == 1
    assert m["time_to_final_s"] == pytest.approx(0.3)


def test_no_tokens_gives_no_metrics():
    assert generation_metrics(GenerationTiming(start=0.0, prompt_tokens=5)) == {}


def test_case_samples_one_value_per_rep():
    reps = [_timing(0.0, [0.5, 0.6]), _timing(0.0, [0.4, 0.6])]
    s = case_samples(reps)
    assert s["ttft_s"] == [pytest.approx(0.5), pytest.approx(0.4)]
    assert len(s["decode_tok_s"]) == 2


def test_concurrent_total_throughput_over_wall_time():
    a = _timing(0.0, [0.5, 1.0], end=1.0)
    b = _timing(0.5, [1.0, 2.0], end=2.0)
    s = concurrent_samples([a, b])
    assert len(s["ttft_s"]) == 2  # per request
    assert s["total_tok_s"] == [pytest.approx(4 / 2.0)]  # one wave: 4 tokens over 0..2 s
