"""The comparison of two runs, as ``gptoss compare`` computes it (``bench.tracking.compare``) and
``reports.compare`` renders it: per case and metric the change of the medians and a verdict.

Part of the contract: ``compare --format json`` prints ``Comparison.to_dict()``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench.results.metrics import METRICS

EXACT_MAX_N = 30  # up to this many samples in all, the rank test is exact
TEST_NAME = "one-sided Mann-Whitney U rank test"
# Environment fields shown beside a regression: the usual suspects when a run gets slower.
ENV_FIELDS = ("gpu", "gpu_count", "cpu", "driver", "cuda", "torch", "triton", "transformers", "kernels", "python")

# Verdicts
REGRESSION = "regression"  # gated, beyond the threshold in the worse direction, significant
IMPROVEMENT = "improvement"  # gated, beyond the threshold in the better direction, significant
WORSE = "worse"  # significantly worse, but within the threshold (or no threshold on it)
BETTER = "better"
NOT_SIGNIFICANT = "not significant"  # the medians moved beyond the threshold, the samples overlap
UNCHANGED = "unchanged"
NOW_FAILS = "now fails"  # the case ran on BASE and fails on CURRENT
NOW_RUNS = "now runs"
SKIPPED = "not run"  # skipped on one side: not compared


@dataclass(frozen=True)
class Threshold:
    metric: str
    pct: float  # magnitude, >= 0

    @property
    def sign(self) -> str:
        return "-" if METRICS[self.metric].higher_is_better else "+"

    def __str__(self) -> str:
        return f"{self.metric}:{self.sign}{self.pct:g}%"



@dataclass
class MetricDelta:
    metric: str
    unit: str
    higher_is_better: bool
    base: float | None  # median (load phase: the single value)
    current: float | None
    n_base: int
    n_current: int
    delta: float | None  # current - base
    pct: float | None  # 100 * delta / |base|; None when base is 0
    direction: str  # "better" | "worse" | "same"
    threshold: Threshold | None
    p_value: float | None  # one-sided, in the observed direction; None when not tested
    test: str | None  # "exact" | "normal" | None
    verdict: str
    note: str = ""
    base_ci: tuple[float, float] | None = None  # 95% interval of each median (from 6 samples on)
    current_ci: tuple[float, float] | None = None

    @property
    def regression(self) -> bool:
        return self.verdict == REGRESSION

    def to_dict(self) -> dict:
        return {
            "metric": self.metric,
            "unit": self.unit,
            "higher_is_better": self.higher_is_better,
            "base": self.base,
            "current": self.current,
            "n_base": self.n_base,
            "n_current": self.n_current,
            "delta": self.delta,
            "pct": self.pct,
            "direction": self.direction,
            "threshold": str(self.threshold) if self.threshold else None,
            "p_value": self.p_value,
            "test": self.test,
            "verdict": self.verdict,
            "note": self.note,
            "base_ci": list(self.base_ci) if self.base_ci else None,
            "current_ci": list(self.current_ci) if self.current_ci else None,
        }


@dataclass
class CaseComparison:
    id: str  # the case id, or "load/<quant>/<attn>" for a load record
    phase: str  # "case" | "load"
    base_status: str
    current_status: str
    weights_path: tuple[str | None, str | None]
    metrics: list[MetricDelta] = field(default_factory=list)
    verdict: str = UNCHANGED  # the case's own verdict (now fails / now runs), else the worst metric's
    message: str | None = None  # the failure message of CURRENT, if it fails

    @property
    def regressions(self) -> list[MetricDelta]:
        return [m for m in self.metrics if m.regression]

    @property
    def regressed(self) -> bool:
        return self.verdict == NOW_FAILS or bool(self.regressions)

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "phase": self.phase,
            "base_status": self.base_status,
            "current_status": self.current_status,
            "weights_path": {"base": self.weights_path[0], "current": self.weights_path[1]},
            "verdict": self.verdict,
            "message": self.message,
            "regressed": self.regressed,
            "metrics": [m.to_dict() for m in self.metrics],
        }


@dataclass
class RunInfo:
    label: str  # the path as given
    run_id: str
    created_at: str
    model: str
    env: dict[str, Any]

    def to_dict(self) -> dict:
        return {"path": self.label, "run_id": self.run_id, "created_at": self.created_at, "model": self.model, "env": self.env}


@dataclass
class Comparison:
    base: RunInfo
    current: RunInfo
    thresholds: dict[str, Threshold]
    thresholds_source: str  # "default" | "--fail-on"
    alpha: float
    cases: list[CaseComparison]
    only_in_base: list[str]
    only_in_current: list[str]
    mismatches: list[str]  # what differs that normally refuses the comparison (allowed here)
    env_diff: dict[str, tuple[Any, Any]]

    @property
    def regressions(self) -> list[tuple[CaseComparison, MetricDelta | None]]:
        out: list[tuple[CaseComparison, MetricDelta | None]] = []
        for c in self.cases:
            if c.verdict == NOW_FAILS:
                out.append((c, None))
            out.extend((c, m) for m in c.regressions)
        return out

    @property
    def improvements(self) -> list[tuple[CaseComparison, MetricDelta | None]]:
        out: list[tuple[CaseComparison, MetricDelta | None]] = []
        for c in self.cases:
            if c.verdict == NOW_RUNS:
                out.append((c, None))
            out.extend((c, m) for m in c.metrics if m.verdict == IMPROVEMENT)
        return out

    @property
    def same_run(self) -> bool:
        return bool(self.base.run_id) and self.base.run_id == self.current.run_id

    @property
    def failed(self) -> bool:
        return bool(self.regressions)

    @property
    def untested(self) -> list[tuple[CaseComparison, MetricDelta]]:
        """Gated metrics decided by the threshold alone (too few samples for the rank test)."""
        return [(c, m) for c in self.cases for m in c.metrics
                if m.threshold and m.test is None and m.base is not None and m.current is not None and m.direction != "same"]

    def to_dict(self) -> dict:
        return {
            "status": "fail" if self.failed else "pass",
            "same_run": self.same_run,
            "test": TEST_NAME,
            "alpha": self.alpha,
            "thresholds": [str(t) for t in self.thresholds.values()],
            "thresholds_source": self.thresholds_source,
            "base": self.base.to_dict(),
            "current": self.current.to_dict(),
            "mismatches": self.mismatches,
            "env_differences": {k: {"base": a, "current": b} for k, (a, b) in self.env_diff.items()},
            "regressions": [{"case": c.id, "metric": m.metric if m else None, "verdict": m.verdict if m else c.verdict} for c, m in self.regressions],
            "improvements": [{"case": c.id, "metric": m.metric if m else None} for c, m in self.improvements],
            "only_in_base": self.only_in_base,
            "only_in_current": self.only_in_current,
            "cases": [c.to_dict() for c in self.cases],
        }
