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


def median_ci(samples: Sequence[float], level: float = 0.95) -> tuple[float, float] | None:
    """A distribution-free confidence interval of the median: the order statistics
    ``[x(k), x(n+1-k)]`` with the largest k whose binomial coverage is at least ``level``.
    None below 6 samples, where even ``[min, max]`` covers the median less than 95% of the time."""
    n = len(samples)
    ordered = sorted(samples)
    tail, k = (1 - level) / 2, 0
    below = 0.0  # P(Binomial(n, 1/2) <= j - 1) for the j being tried
    for j in range(1, n // 2 + 1):
        below += math.comb(n, j - 1) / 2**n
        if below > tail:
            break
        k = j
    if k == 0:
        return None
    return float(ordered[k - 1]), float(ordered[n - k])


@dataclass
class Stat:
    """One metric over n repetitions, raw samples kept; ``ci_low``/``ci_high``: the 95%
    confidence interval of the median (from 6 samples on)."""

    samples: list[float] = field(default_factory=list)
    n: int = 0
    median: float | None = None
    mean: float | None = None
    stdev: float | None = None
    p5: float | None = None
    p95: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None

    @classmethod
    def of(cls, samples: Sequence[float]) -> "Stat":
        values = [float(s) for s in samples if s is not None and not math.isnan(float(s))]
        if not values:
            return cls(samples=[], n=0)
        ci = median_ci(values)
        return cls(
            samples=values,
            n=len(values),
            median=float(statistics.median(values)),
            mean=float(statistics.fmean(values)),
            # Sample standard deviation; a single sample has no spread to speak of.
            stdev=float(statistics.stdev(values)) if len(values) > 1 else 0.0,
            p5=percentile(values, 5),
            p95=percentile(values, 95),
            ci_low=ci[0] if ci else None,
            ci_high=ci[1] if ci else None,
        )

    @property
    def ci_half_width(self) -> float | None:
        """The larger side of the median's confidence interval, relative to the median."""
        if self.ci_low is None or self.ci_high is None or not self.median:
            return None
        return max(self.ci_high - self.median, self.median - self.ci_low) / abs(self.median)

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
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Stat":
        samples = list(d.get("samples", []))
        ci = (d.get("ci_low"), d.get("ci_high")) if "ci_low" in d else median_ci(samples)  # older files
        return cls(
            samples=samples,
            n=int(d.get("n", 0)),
            median=d.get("median"),
            mean=d.get("mean"),
            stdev=d.get("stdev"),
            p5=d.get("p5"),
            p95=d.get("p95"),
            ci_low=ci[0] if ci else None,
            ci_high=ci[1] if ci else None,
        )
