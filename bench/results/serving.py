"""Serving aggregates, computed afterwards from a load case's per-request records (the way
vLLM's ``calculate_metrics`` does), service-level objectives and goodput, and the knee of a
latency-throughput curve.

``aggregate(log, slo)`` gives metric samples (names from the registry): per request (one sample
per counted request that succeeded) ``ttft_s``, ``tpot_s``, ``e2e_s``, ``new_tokens`` and the
harmony channel counts; per run (one sample) ``request_throughput``, ``total_tok_s`` (output
tokens/s), ``error_rate``, the p50/p90/p99 of TTFT, TPOT and end-to-end time over requests, the
p50/p90/p99 of every inter-token gap of every request (``itl_all_*``), and with an SLO
``goodput_frac`` and ``goodput_req_s``. A failed request counts against the error rate and
against goodput, never in the latency figures.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Sequence

from bench.results.errors import UserError
from bench.results.requests import RequestLog, RequestRecord
from bench.results.stats import percentile

PERCENTILES = (50, 90, 99)
# Per-request latencies an SLO may bound, and how to read each from a record.
SLO_METRICS = {
    "ttft_s": lambda r: r.ttft,
    "tpot_s": lambda r: r.tpot,
    "e2e_s": lambda r: r.e2e,
    "time_to_final_s": lambda r: r.time_to_final,
}


@dataclass(frozen=True)
class Slo:
    """Upper bounds on per-request latencies: a request is good when it succeeded and meets all."""

    limits: tuple[tuple[str, float], ...]

    def met(self, r: RequestRecord) -> bool:
        if not r.ok:
            return False
        for name, limit in self.limits:
            value = SLO_METRICS[name](r)
            if name == "tpot_s" and value is None and r.output_tokens == 1 and r.ttft is not None:
                continue  # a one-token answer has no time per output token to miss
            if value is None or value > limit:
                return False
        return True

    @property
    def text(self) -> str:
        return ",".join(f"{name}:{limit:g}" for name, limit in self.limits)

    @classmethod
    def parse(cls, text: str) -> "Slo":
        """``ttft_s:2,tpot_s:0.015`` (seconds; ``ms`` may follow a number) -> Slo."""
        limits: dict[str, float] = {}
        items = [x.strip() for x in str(text).split(",") if x.strip()]
        if not items:
            raise UserError("--slo is empty; give bounds such as --slo ttft_s:2,tpot_s:0.015 (seconds).")
        for item in items:
            name, _, value = item.partition(":")
            name = name.strip()
            if name not in SLO_METRICS:
                raise UserError(f"--slo got {name!r}; bound one or more of {', '.join(SLO_METRICS)}, e.g. --slo ttft_s:2,tpot_s:0.015.")
            m = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s)?\s*", value)
            if not m or float(m.group(1)) <= 0:
                raise UserError(f"--slo {name} got {value!r}; give a positive number of seconds, e.g. {name}:2 (or 150ms).")
            limits[name] = float(m.group(1)) / (1000.0 if m.group(2) == "ms" else 1.0)
        return cls(tuple(limits.items()))


def aggregate(log: RequestLog, slo: Slo | None = None) -> dict[str, list[float]]:
    """Metric samples of a load case (see the module docstring)."""
    rs = log.records
    ok = [r for r in rs if r.ok]
    out: dict[str, list[float]] = {}

    def per_request(name: str, values) -> list[float]:
        vals = [float(v) for v in values if v is not None and math.isfinite(v)]
        if vals:
            out[name] = vals
        return vals

    ttft = per_request("ttft_s", (r.ttft for r in ok))
    tpot = per_request("tpot_s", (r.tpot for r in ok))
    e2e = per_request("e2e_s", (r.e2e for r in ok))
    per_request("new_tokens", (r.output_tokens for r in ok))
    if any(r.analysis_tokens is not None for r in ok):
        per_request("analysis_tokens", (r.analysis_tokens for r in ok))
        per_request("final_tokens", (r.final_tokens for r in ok))
        per_request("time_to_final_s", (r.time_to_final for r in ok))
    if rs:
        out["error_rate"] = [(len(rs) - len(ok)) / len(rs)]
    span = log.duration_s
    if span > 0 and rs:
        out["request_throughput"] = [len(ok) / span]
        out["total_tok_s"] = [sum(r.output_tokens for r in ok) / span]
    gaps = [g for r in ok for g in r.token_gaps()]
    for name, values in (("ttft", ttft), ("tpot", tpot), ("e2e", e2e), ("itl_all", gaps)):
        if values:
            for q in PERCENTILES:
                out[f"{name}_p{q}_s"] = [percentile(values, q)]
    if slo is not None and rs:
        good = sum(1 for r in rs if slo.met(r))
        out["goodput_frac"] = [good / len(rs)]
        if span > 0:
            out["goodput_req_s"] = [good / span]
    return out


def load_facts(log: RequestLog) -> dict[str, float | int]:
    """Facts about the load as it happened, for the case's info: requests counted and failed, the
    rate at which requests were sent, and the mean number in flight (Little's law)."""
    rs = log.records
    facts: dict[str, float | int] = {"requests": len(rs), "failed": sum(1 for r in rs if not r.ok),
                                     "warmup_requests": log.warmup_requests, "duration_s": round(log.duration_s, 6)}
    starts = sorted(r.start for r in rs)
    if len(starts) > 1 and starts[-1] > starts[0]:
        facts["sent_req_s"] = round((len(starts) - 1) / (starts[-1] - starts[0]), 6)
    if log.duration_s > 0:
        busy = sum(r.e2e for r in rs if r.e2e is not None)
        facts["mean_in_flight"] = round(busy / log.duration_s, 3)
    return facts


def knee(xs: Sequence[float], ys: Sequence[float]) -> int | None:
    """The knee of a latency (``ys``) against throughput (``xs``) curve whose points are in the
    order of the offered load (rate or concurrency), as an index: the point farthest to the lower
    right of the chord from the first to the last point once both axes are scaled to 0..1 (the
    Kneedle idea). Before it, more load buys throughput at little latency; after it, latency climbs
    for little more throughput. None with fewer than three points or no bend."""
    points = [(x, y, i) for i, (x, y) in enumerate(zip(xs, ys)) if x is not None and y is not None]
    if len(points) < 3:
        return None
    x0, x1 = min(p[0] for p in points), max(p[0] for p in points)
    y0, y1 = min(p[1] for p in points), max(p[1] for p in points)
    if x1 <= x0 or y1 <= y0:
        return None
    norm = [((x - x0) / (x1 - x0), (y - y0) / (y1 - y0), i) for x, y, i in points]
    (ax, ay, _), (bx, by, _) = norm[0], norm[-1]
    length = math.hypot(bx - ax, by - ay)
    if length == 0:
        return None
    best, best_d = None, 0.0
    for x, y, i in norm[1:-1]:
        d = -((bx - ax) * (y - ay) - (by - ay) * (x - ax)) / length  # > 0: below and right of the chord
        if d > best_d:
            best, best_d = i, d
    return best if best_d > 0.05 else None
