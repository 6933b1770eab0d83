"""Summary statistics of repeated measurements.

Pure Python on purpose: the results file, compare and the reports all use these, and none of them
should need numpy to read a number back.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Sequence


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation between closest ranks.

    The same definition as numpy's default (``method="linear"``), so figures agree with what a
    user computes from the raw samples in the results file.
    """
    if not samples:
        raise ValueError("percentile of no samples")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} outside 0..100")
    ordered = sorted(samples)
    pos = (len(ordered) - 1) * q / 100
    lo = math.floor(pos)
    hi = math.ceil(pos)
    if lo == hi:
        return float(ordered[lo])
    return float(ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo))


@dataclass
class Stat:
    """One metric over n repetitions, raw samples kept."""

    samples: list[float] = field(default_factory=list)
    n: int = 0
    median: float | None = None
    mean: float | None = None
    stdev: float | None = None
    p5: float | None = None
    p95: float | None = None

    @classmethod
    def of(cls, samples: Sequence[float]) -> "Stat":
        values = [float(s) for s in samples if s is not None and not math.isnan(float(s))]
        if not values:
            return cls(samples=[], n=0)
        return cls(
            samples=values,
            n=len(values),
            median=float(statistics.median(values)),
            mean=float(statistics.fmean(values)),
            # Sample standard deviation; a single sample has no spread to speak of.
            stdev=float(statistics.stdev(values)) if len(values) > 1 else 0.0,
            p5=percentile(values, 5),
            p95=percentile(values, 95),
        )

    @property
    def cv(self) -> float | None:
        """Coefficient of variation (stdev / mean), None where undefined."""
        if self.n < 2 or not self.mean:
            return None
        return self.stdev / abs(self.mean)

    def to_dict(self) -> dict:
        return {
            "samples": self.samples,
            "n": self.n,
            "median": self.median,
            "mean": self.mean,
            "stdev": self.stdev,
            "p5": self.p5,
            "p95": self.p95,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Stat":
        return cls(
            samples=list(d.get("samples", [])),
            n=int(d.get("n", 0)),
            median=d.get("median"),
            mean=d.get("mean"),
            stdev=d.get("stdev"),
            p5=d.get("p5"),
            p95=d.get("p95"),
        )
