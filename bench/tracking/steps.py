"""Step changes in a history: a run's median against the rolling baseline of its series.

A run's median is compared with the rolling baseline of the same series (same model, GPU, case
and metric): the median of the medians of the previous ``window`` runs (5; at least 3 needed).
It is flagged when it differs from that baseline by more than ``step_pct`` (5%) AND by more than
``STEP_SIGMAS`` (3) robust standard deviations, where the noise is the run-to-run spread of the
previous medians (1.4826 x their MAD) combined with the run's own standard error of the median
(1.2533 x stdev / sqrt(n)). So a noisy series needs a bigger jump and a deterministic one
(memory) is flagged on any change beyond the percentage. After a step the baseline restarts at
that run (a new level), so a step is flagged once, where it happened.
"""

from __future__ import annotations

import math
import statistics
from typing import Sequence

from bench.results import METRICS
from bench.results.trends import Point, RunRow, RunShow, SeriesKey, ShowRow, Step, StepRule, Trend
from bench.tracking.history import History
from diagnostics.errors import UserError


def _mad_sigma(values: Sequence[float]) -> float:
    med = statistics.median(values)
    return 1.4826 * statistics.median([abs(v - med) for v in values])


def analyze(key: SeriesKey, points: Sequence[Point], rule: StepRule | None = None) -> tuple[list[float | None], list[Step]]:
    """The rolling baseline at each point (None where too few runs precede it) and the steps.

    After a step is flagged the baseline restarts at that run (a new level): the step is
    flagged once, at the run that introduced it, not again at each run until the rolling
    median catches up.
    """
    rule = rule or StepRule()
    spec = METRICS.get(key.metric)
    higher = spec.higher_is_better if spec else True
    baselines: list[float | None] = []
    steps: list[Step] = []
    regime_start = 0
    for i, p in enumerate(points):
        prev_points = [q for q in points[regime_start:i] if q.median is not None][-rule.window:]
        prev = [q.median for q in prev_points]
        if len(prev) < rule.min_baseline:
            baselines.append(None)
            continue
        baseline = statistics.median(prev)
        baselines.append(baseline)
        if p.median is None:
            continue
        between = _mad_sigma(prev)
        own = 1.2533 * (p.stdev or 0.0) / math.sqrt(p.n) if p.n > 1 else 0.0
        sigma = math.sqrt(between**2 + own**2)
        diff = p.median - baseline
        if diff == 0:
            continue
        pct = 100.0 * diff / abs(baseline) if baseline else None
        beyond_pct = pct is None or abs(pct) > rule.pct
        beyond_noise = abs(diff) > rule.sigmas * sigma
        if beyond_pct and beyond_noise:
            direction = "better" if (diff > 0) == higher else "worse"
            prev_paths = {q.weights_path for q in prev_points if q.weights_path}
            note = ""
            if p.weights_path and prev_paths and p.weights_path not in prev_paths:
                note = f"weights path changed: {'/'.join(sorted(prev_paths))} -> {p.weights_path}"
            steps.append(Step(p.run_id, key, p.median, baseline, pct, sigma, direction, note))
            regime_start = i
    return baselines, steps


def detect_steps(key: SeriesKey, points: Sequence[Point], rule: StepRule | None = None) -> list[Step]:
    return analyze(key, points, rule)[1]



def steps(h: History, rule: StepRule | None = None, **filters) -> list[Step]:
    """Every step change in the series that ``filters`` (gpu, model, metrics, cases) select."""
    out: list[Step] = []
    for key, pts in h.series(**filters).items():
        out.extend(detect_steps(key, pts, rule))
    return out


def trends(h: History, metrics: Sequence[str], rule: StepRule | None = None, *, cases: Sequence[str] | None = None,
           gpu: str | None = None, model: str | None = None) -> list[Trend]:
    """The series of ``metrics`` with their baselines and steps; a UserError when there are none."""
    series = h.series(metrics, cases=cases, gpu=gpu, model=model)
    if not series:
        what = ", ".join(metrics)
        where = f" for case {', '.join(cases)}" if cases else ""
        raise UserError(f"the history {h.path} has no values of {what}{where}; check --metric/--case/--gpu against `gptoss history show latest`.")
    out = []
    for key, pts in series.items():
        bases, found = analyze(key, pts, rule)
        out.append(Trend(key, pts, bases, found))
    return out


def show_run(h: History, run: RunRow, rule: StepRule, metrics: Sequence[str] | None = None) -> RunShow:
    """``run``'s metrics beside their rolling baselines, with the steps it introduced."""
    # One pass over the run's series gives both its baselines and the steps it introduced.
    baselines: dict[tuple[str, str], float] = {}
    found_steps: dict[tuple[str, str], Step] = {}
    for key, pts in h.series(metrics, gpu=run.gpu_name, model=run.model_id).items():
        bases, found = analyze(key, pts, rule)
        for p, b in zip(pts, bases):
            if p.run_id == run.run_id and b is not None:
                baselines[(key.case_id, key.metric)] = b
        found_steps.update(((key.case_id, key.metric), s) for s in found if s.run_id == run.run_id)
    show = RunShow(run=run, failed=h.failed_cases(run.run_id))
    for m in h.case_metrics(run.run_id):
        if metrics and m["metric"] not in metrics:
            continue
        where = (m["case_id"], m["metric"])
        show.rows.append(ShowRow(m["case_id"], m["metric"], m["median"], m["n"], m["stdev"],
                                 baselines.get(where), found_steps.get(where)))
    return show
