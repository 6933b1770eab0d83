"""Per-token clocks and the metrics derived from them.

A generation (one `model.generate` call, or one streamed server request) is recorded as a
``GenerationTiming``: when it started, when each new token (or streamed chunk) reached the host,
and how many tokens each arrival carried. Every backend produces these; ``case_samples`` turns a
list of them (one per repetition) into per-metric samples, so in-process and server numbers are
computed by the same code.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from bench.results.stats import percentile

clock = time.perf_counter


@dataclass
class GenerationTiming:
    start: float  # clock() just before the request / generate call
    prompt_tokens: int  # per sequence
    batch_size: int = 1
    # clock() when each step's new tokens reached the host, and how many tokens per sequence each
    # arrival carried (1 for in-process decoding; a server may pack several tokens into one chunk).
    arrivals: list[float] = field(default_factory=list)
    tokens_per_arrival: list[int] = field(default_factory=list)
    end: float | None = None  # clock() when the call returned / the stream closed
    # Natural mode: content tokens per harmony channel and when the first final-channel token came.
    channel_tokens: dict[str, int] = field(default_factory=dict)
    first_final_at: float | None = None
    stop_reason: str | None = None  # "length", "stop", ...

    def arrive(self, tokens: int = 1, at: float | None = None) -> None:
        self.arrivals.append(clock() if at is None else at)
        self.tokens_per_arrival.append(tokens)

    @property
    def new_tokens(self) -> int:
        return sum(self.tokens_per_arrival)


def _itl_gaps(t: GenerationTiming) -> list[float]:
    """Per-token gaps after the first token. A chunk of k tokens spreads its gap over k tokens."""
    gaps: list[float] = []
    for prev, cur, k in zip(t.arrivals, t.arrivals[1:], t.tokens_per_arrival[1:]):
        gaps.extend([(cur - prev) / k] * k)
    return gaps


def generation_metrics(t: GenerationTiming) -> dict[str, float]:
    """Metric values of one generation (one repetition). Names are bench.results.METRICS names.

    - ttft_s: first token's arrival minus start.
    - prefill_tok_s: prompt tokens of the whole batch over ttft (the first step is the prefill
      plus one decode step; that is the figure a user feels).
    - decode_tok_s: tokens per sequence after the first arrival over the time after it, times the
      batch size (tokens the device produced per second).
    - itl_pXX_s: percentiles of the inter-token gaps.
    - e2e_s: end minus start.
    """
    out: dict[str, float] = {}
    if not t.arrivals:
        return out
    end = t.end if t.end is not None else t.arrivals[-1]
    ttft = t.arrivals[0] - t.start
    out["ttft_s"] = ttft
    if ttft > 0 and t.prompt_tokens:
        out["prefill_tok_s"] = t.prompt_tokens * t.batch_size / ttft
    after_first = t.new_tokens - t.tokens_per_arrival[0]
    span = t.arrivals[-1] - t.arrivals[0]
    if after_first > 0 and span > 0:
        out["decode_tok_s"] = after_first * t.batch_size / span
    gaps = _itl_gaps(t)
    if gaps:
        out["itl_p50_s"] = percentile(gaps, 50)
        out["itl_p90_s"] = percentile(gaps, 90)
        out["itl_p99_s"] = percentile(gaps, 99)
    out["e2e_s"] = end - t.start
    out["new_tokens"] = float(t.new_tokens)
    if out["e2e_s"] > 0:
        out["total_tok_s"] = t.new_tokens * t.batch_size / out["e2e_s"]
    if t.channel_tokens or t.first_final_at is not None:
        out["analysis_tokens"] = float(t.channel_tokens.get("analysis", 0))
        out["final_tokens"] = float(t.channel_tokens.get("final", 0))
        if t.first_final_at is not None:
            out["time_to_final_s"] = t.first_final_at - t.start
    return out


def case_samples(timings: list[GenerationTiming]) -> dict[str, list[float]]:
    """Per-metric samples over repetitions: metric name -> one value per repetition."""
    samples: dict[str, list[float]] = {}
    for t in timings:
        for name, value in generation_metrics(t).items():
            samples.setdefault(name, []).append(value)
    return samples


def concurrent_samples(timings: list[GenerationTiming]) -> dict[str, list[float]]:
    """Samples for N requests in flight at once (a server's concurrency sweep).

    Latency metrics are per request (one sample per request); ``total_tok_s`` is one sample for
    the whole wave: all output tokens over the wall time from the first start to the last end.
    """
    samples = case_samples(timings)
    samples.pop("total_tok_s", None)
    finished = [t for t in timings if t.arrivals]
    if finished:
        first = min(t.start for t in finished)
        last = max((t.end if t.end is not None else t.arrivals[-1]) for t in finished)
        if last > first:
            samples["total_tok_s"] = [sum(t.new_tokens * t.batch_size for t in finished) / (last - first)]
    return samples
