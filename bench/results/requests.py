"""Per-request records of a sustained-load case, kept in the results file compactly.

A load case (``--load closed|poisson|gamma``) keeps every counted request: when it started, its
time to first token, when it ended, its token counts, each streamed chunk's arrival and its
status. In memory a ``RequestRecord`` per request; in the file one ``RequestLog`` per case, stored
column by column (one array per field, not one object per request) with times in seconds rounded
to the microsecond and the gaps between chunks as whole microseconds. Aggregates (throughput,
percentiles, goodput) are computed from these records afterwards: ``bench.results.serving``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

US = 1e6  # chunk gaps are stored in whole microseconds


@dataclass
class RequestRecord:
    """One counted request. Times in seconds; ``start`` from the beginning of the measured
    period, the others from the request's own start."""

    start: float
    ttft: float | None = None  # first token's arrival; None when no token came
    e2e: float | None = None  # the end of the answer (or the failure)
    prompt_tokens: int | None = None
    output_tokens: int = 0
    gaps: list[float] = field(default_factory=list)  # between consecutive chunks after the first
    chunk_tokens: list[int] = field(default_factory=list)  # tokens per chunk, the first included
    error: str | None = None  # None: ok
    effort: str | None = None
    analysis_tokens: int | None = None
    final_tokens: int | None = None
    time_to_final: float | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def tpot(self) -> float | None:
        """Time per output token after the first: (e2e - ttft) / (tokens - 1)."""
        if not self.ok or self.ttft is None or self.e2e is None or self.output_tokens < 2:
            return None
        return (self.e2e - self.ttft) / (self.output_tokens - 1)

    def token_gaps(self) -> list[float]:
        """Per-token gaps after the first token (a chunk of k tokens spreads its gap over k)."""
        out: list[float] = []
        ks = self.chunk_tokens[1:] if len(self.chunk_tokens) == len(self.gaps) + 1 else [1] * len(self.gaps)
        for gap, k in zip(self.gaps, ks):
            out.extend([gap / k] * k if k > 0 else [])
        return out


def _r(value: float | None) -> float | None:
    return None if value is None else round(float(value), 6)


@dataclass
class RequestLog:
    """The counted requests of one load case, and the facts that frame them."""

    records: list[RequestRecord] = field(default_factory=list)
    duration_s: float = 0.0  # from the start of the measured period to the end of its last request
    warmup_requests: int = 0  # sent before the measured period, not counted

    def __len__(self) -> int:
        return len(self.records)

    # ---- JSON edge: columns ----------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        rs = self.records
        d: dict[str, Any] = {
            "n": len(rs),
            "duration_s": _r(self.duration_s),
            "warmup_requests": self.warmup_requests,
            "start_s": [_r(r.start) for r in rs],
            "ttft_s": [_r(r.ttft) for r in rs],
            "e2e_s": [_r(r.e2e) for r in rs],
            "prompt_tokens": [r.prompt_tokens for r in rs],
            "output_tokens": [r.output_tokens for r in rs],
            "gaps_us": [[round(g * US) for g in r.gaps] for r in rs],
        }
        if any(any(k != 1 for k in r.chunk_tokens) for r in rs):
            d["chunk_tokens"] = [r.chunk_tokens if any(k != 1 for k in r.chunk_tokens) else None for r in rs]
        errors = sorted({r.error for r in rs if r.error is not None})
        if errors:
            d["errors"] = errors
            d["error"] = [None if r.error is None else errors.index(r.error) for r in rs]
        efforts = sorted({r.effort for r in rs if r.effort is not None})
        if len(efforts) > 1:
            d["efforts"] = efforts
            d["effort"] = [None if r.effort is None else efforts.index(r.effort) for r in rs]
        elif efforts:
            d["efforts"] = efforts
        if any(r.analysis_tokens is not None or r.final_tokens is not None for r in rs):
            d["analysis_tokens"] = [r.analysis_tokens for r in rs]
            d["final_tokens"] = [r.final_tokens for r in rs]
            d["time_to_final_s"] = [_r(r.time_to_final) for r in rs]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RequestLog":
        n = int(d.get("n", len(d.get("start_s", []))))

        def col(name: str, default: Any = None) -> list[Any]:
            values = d.get(name)
            return list(values) if isinstance(values, list) and len(values) == n else [default] * n

        errors = list(d.get("errors") or [])
        efforts = list(d.get("efforts") or [])
        error_idx, effort_idx = col("error"), col("effort")
        chunk_tokens = col("chunk_tokens")
        records = []
        for i, (start, ttft, e2e, p, o, gaps, analysis, final, ttf) in enumerate(zip(
            col("start_s", 0.0), col("ttft_s"), col("e2e_s"), col("prompt_tokens"), col("output_tokens", 0),
            col("gaps_us", []), col("analysis_tokens"), col("final_tokens"), col("time_to_final_s"),
        )):
            gaps = [g / US for g in (gaps or [])]
            ks = chunk_tokens[i] or ([1] * (len(gaps) + 1) if ttft is not None else [])
            e = error_idx[i]
            effort = efforts[effort_idx[i]] if effort_idx[i] is not None and effort_idx[i] < len(efforts) else (
                efforts[0] if len(efforts) == 1 else None)
            records.append(RequestRecord(
                start=float(start), ttft=ttft, e2e=e2e, prompt_tokens=p, output_tokens=int(o or 0),
                gaps=gaps, chunk_tokens=list(ks), error=errors[e] if e is not None and e < len(errors) else None,
                effort=effort, analysis_tokens=analysis, final_tokens=final, time_to_final=ttf,
            ))
        return cls(records=records, duration_s=float(d.get("duration_s") or 0.0),
                   warmup_requests=int(d.get("warmup_requests") or 0))


# ---- the file: fast checks and a compact text form ----------------------------------------------

NUMBER_COLUMNS = ("start_s", "ttft_s", "e2e_s", "time_to_final_s")
COUNT_COLUMNS = ("prompt_tokens", "output_tokens", "error", "effort", "analysis_tokens", "final_tokens")
NESTED_COLUMNS = ("gaps_us", "chunk_tokens")


def column_problem(d: dict[str, Any]) -> str | None:
    """What is wrong with a ``requests`` block's columns (lengths and value types), checked in
    plain Python so a file of millions of values validates in a fraction of a second; None when
    nothing is. The JSON Schema checks the rest on a shortened copy (``shortened``)."""
    n = d.get("n")
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        return "n is not a count of requests"
    for name in NUMBER_COLUMNS + COUNT_COLUMNS + NESTED_COLUMNS:
        col = d.get(name)
        if col is None:
            continue
        if not isinstance(col, list) or len(col) != n:
            return f"{name} does not hold one value per request ({n})"
        if name in NUMBER_COLUMNS:
            if not all(x is None or (isinstance(x, (int, float)) and not isinstance(x, bool)) for x in col):
                return f"{name} holds a value that is not a number"
        elif name in COUNT_COLUMNS:
            if not all(x is None or (type(x) is int and x >= 0) for x in col):
                return f"{name} holds a value that is not a whole number"
        elif not all(x is None or (isinstance(x, list) and all(type(v) is int for v in x)) for x in col):
            return f"{name} holds an entry that is not a list of whole numbers"
    return None


def shortened(d: dict[str, Any], keep: int = 2) -> dict[str, Any]:
    """A copy with every column cut to its first ``keep`` values, for the JSON Schema."""
    out = dict(d)
    for name in NUMBER_COLUMNS + COUNT_COLUMNS + NESTED_COLUMNS:
        col = out.get(name)
        if isinstance(col, list):
            out[name] = [x[:keep] if isinstance(x, list) else x for x in col[:keep]]
    return out


def compact_json(d: dict[str, Any], indent: str) -> str:
    """The block as JSON with one line per column (no space inside arrays): about six bytes per
    chunk gap, against about thirteen when every number sits on its own indented line."""
    lines = [f'{indent} {json.dumps(k)}: {json.dumps(v, separators=(",", ":"), allow_nan=False)}' for k, v in d.items()]
    return "{\n" + ",\n".join(lines) + "\n" + indent + "}"
