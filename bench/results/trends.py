"""The records of a history of runs, as ``bench.tracking`` computes them and ``reports.history``
renders them: stored runs, series of one metric over runs, rolling baselines and step changes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

WINDOW = 5
MIN_BASELINE = 3
STEP_PCT = 5.0
STEP_SIGMAS = 3.0


@dataclass
class RunRow:
    id: int
    run_id: str
    created_at: str
    added_at: str
    commit: str | None
    label: str | None
    model_id: str
    synthetic: bool
    backend: str | None
    env: dict[str, Any]
    tool_version: str | None
    complete: bool
    source: str | None
    cases: int = 0

    @property
    def gpu_name(self) -> str:
        return self.env.get("gpu") or "cpu"

    def to_dict(self) -> dict:
        return {
            "run_id": self.run_id, "created_at": self.created_at, "added_at": self.added_at, "commit": self.commit,
            "label": self.label, "model": self.model_id, "synthetic": self.synthetic, "backend": self.backend,
            "env": self.env, "tool_version": self.tool_version, "complete": self.complete, "source": self.source,
            "cases": self.cases,
        }


@dataclass
class Point:
    """One run's value of one series."""

    run_id: str
    order: int  # position of the run in the time order of the whole history
    created_at: str
    commit: str | None
    label: str | None
    median: float | None
    stdev: float | None
    p5: float | None
    p95: float | None
    n: int
    weights_path: str | None


@dataclass(frozen=True)
class SeriesKey:
    model_id: str
    gpu: str
    case_id: str
    metric: str

    def label(self) -> str:
        return f"{self.case_id} @ {self.gpu}"


@dataclass
class Step:
    run_id: str
    key: SeriesKey
    value: float
    baseline: float
    pct: float | None
    sigma: float
    direction: str  # better | worse
    note: str = ""

    def describe(self) -> str:
        pct = f"{self.pct:+.1f}%" if self.pct is not None else "n/a"
        return f"{self.key.metric} {self.direction} {pct} vs rolling median {self.baseline:.4g} ({self.key.case_id})" + (
            f"; {self.note}" if self.note else ""
        )

    def to_dict(self) -> dict:
        return {
            "run_id": self.run_id, "model": self.key.model_id, "gpu": self.key.gpu, "case": self.key.case_id,
            "metric": self.key.metric, "value": self.value, "baseline": self.baseline, "pct": self.pct,
            "sigma": self.sigma, "direction": self.direction, "note": self.note,
        }


@dataclass
class StepRule:
    window: int = WINDOW
    min_baseline: int = MIN_BASELINE
    pct: float = STEP_PCT
    sigmas: float = STEP_SIGMAS

    def describe(self) -> str:
        return (
            f"step change: median off the median of the previous {self.window} runs of the same case and GPU "
            f"(at least {self.min_baseline}) by more than {self.pct:g}% and by more than {self.sigmas:g} robust sigmas "
            f"(1.4826 MAD of those medians combined with the run's own standard error); the baseline restarts after a step"
        )



@dataclass
class Trend:
    """One series over runs with its rolling baseline (None where too few runs precede a point)
    and the step changes found in it."""

    key: SeriesKey
    points: list[Point]
    baselines: list[float | None]
    steps: list[Step]


@dataclass
class ShowRow:
    case_id: str
    metric: str
    median: float | None
    n: int
    stdev: float | None
    baseline: float | None
    step: Step | None


@dataclass
class RunShow:
    """One run against its rolling baselines (``gptoss history show``)."""

    run: RunRow
    rows: list[ShowRow] = field(default_factory=list)
    failed: list[tuple[str, str, str | None]] = field(default_factory=list)  # case id, status, message
