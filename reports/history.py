"""Rendering a history of runs (``gptoss history``): the run list, one run against its
baselines, and trend plots with step changes marked."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from bench.results import METRICS
from bench.results.trends import RunRow, RunShow, Step, StepRule, Trend
from bench.results.errors import UserError, write_failure
from reports.tables import text_table
from reports.units import display_unit, fmt_value

ENV_SHOWN = ("device", "gpu", "gpu_count", "driver", "cuda", "torch", "triton", "transformers", "kernels", "python", "platform")


def short(sha: str | None, n: int = 10) -> str:
    return sha[:n] if sha else "-"


def _steps_cell(steps: list[Step]) -> str:
    if not steps:
        return "-"
    worse = sum(1 for s in steps if s.direction == "worse")
    better = len(steps) - worse
    parts = []
    if worse:
        parts.append(f"STEP {worse} worse")
    if better:
        parts.append(f"{better} better")
    first = sorted(steps, key=lambda s: (s.direction != "worse", -abs(s.pct or 0)))[0]
    pct = f"{first.pct:+.1f}%" if first.pct is not None else ""
    return ", ".join(parts) + f" ({first.key.metric} {pct} {first.key.case_id})"


def render_list(runs: list[RunRow], steps: list[Step]) -> str:
    by_run: dict[str, list[Step]] = {}
    for s in steps:
        by_run.setdefault(s.run_id, []).append(s)
    rows = [
        [r.run_id, r.created_at, short(r.commit), r.label or "-", r.model_id, r.gpu_name, r.env.get("torch") or "-",
         r.env.get("transformers") or "-", str(r.cases), _steps_cell(by_run.get(r.run_id, []))]
        for r in runs
    ]
    return text_table(["run", "created", "commit", "label", "model", "gpu", "torch", "transformers", "cases", "steps"], rows)




def render_show(show: RunShow, rule: StepRule) -> str:
    run = show.run
    lines = [f"run {run.run_id}"]
    lines.append(f"  created {run.created_at}, added {run.added_at}, commit {run.commit or '-'}, label {run.label or '-'}")
    lines.append(f"  model {run.model_id}{' (synthetic weights)' if run.synthetic else ''}, backend {run.backend or '-'}, tool {run.tool_version or '-'}")
    lines.append("  env " + ", ".join(f"{k} {run.env.get(k) if run.env.get(k) is not None else '-'}" for k in ENV_SHOWN))
    if run.source:
        lines.append(f"  source {run.source}")
    rows = []
    for r in show.rows:
        unit = METRICS[r.metric].unit if r.metric in METRICS else ""
        change = "-"
        if r.baseline is not None and r.median is not None and r.baseline != 0:
            change = f"{100 * (r.median - r.baseline) / abs(r.baseline):+.1f}%"
        step = r.step
        flag = f"STEP {step.direction}" + (f" ({step.note})" if step.note else "") if step else ""
        rows.append([r.case_id, r.metric, fmt_value(r.median, unit), str(r.n),
                     fmt_value(r.stdev, unit) if r.n > 1 else "-", fmt_value(r.baseline, unit) if r.baseline is not None else "-",
                     change, flag])
    lines.append("")
    lines.append(text_table(["case", "metric", "median", "n", "stdev", "baseline", "change", "flag"], rows).rstrip())
    if show.failed:
        lines.append("")
        lines.append("cases that did not run:")
        for case_id, status, msg in show.failed:
            lines.append(f"  {case_id}: {status}{': ' + msg if msg else ''}")
    lines.append("")
    lines.append(f"baseline = rolling median; {rule.describe()}")
    return "\n".join(lines) + "\n"


def plot(trends: list[Trend], runs: list[RunRow], metrics: Sequence[str], out: str | os.PathLike,
         rule: StepRule) -> tuple[Path, int, list[Step]]:
    """Draw the trend of each metric (one panel per metric), step changes marked. Returns
    (path, number of series drawn, steps)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ticks = [r.label or short(r.commit, 7) if (r.label or r.commit) else r.run_id[:10] for r in runs]
    fig, axes = plt.subplots(len(metrics), 1, figsize=(max(7.0, 0.45 * len(runs) + 3), 3.6 * len(metrics)), squeeze=False)
    all_steps: list[Step] = []
    drawn = 0
    for ax, metric in zip(axes[:, 0], metrics):
        spec = METRICS[metric]
        items = [t for t in trends if t.key.metric == metric]
        if not items:
            ax.text(0.5, 0.5, f"no data for {metric}", ha="center", va="center", transform=ax.transAxes)
            continue
        shown = display_unit(spec.unit, [p.median for t in items for p in t.points])
        for trend in items:
            key, pts = trend.key, trend.points
            xs = [p.order for p in pts if p.median is not None]
            ys = [shown(p.median) for p in pts if p.median is not None]
            lo = [shown(p.median - p.p5) if p.p5 is not None else 0 for p in pts if p.median is not None]
            hi = [shown(p.p95 - p.median) if p.p95 is not None else 0 for p in pts if p.median is not None]
            label = key.label() if len({t.key.model_id for t in items}) == 1 else f"{key.model_id}: {key.label()}"
            line = ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", ms=4, capsize=2, label=label)
            color = line[0].get_color()
            bx = [p.order for p, b in zip(pts, trend.baselines) if b is not None]
            by = [shown(b) for b in trend.baselines if b is not None]
            if bx:
                ax.plot(bx, by, ls="--", lw=1, color=color, alpha=0.6)
            all_steps.extend(trend.steps)
            pos = {p.run_id: p.order for p in pts}
            for s in trend.steps:
                c = "tab:red" if s.direction == "worse" else "tab:green"
                ax.scatter([pos[s.run_id]], [shown(s.value)], s=140, facecolors="none", edgecolors=c, linewidths=2, zorder=5)
                ax.annotate(f"{s.direction} {s.pct:+.1f}%" if s.pct is not None else s.direction, (pos[s.run_id], shown(s.value)),
                            textcoords="offset points", xytext=(4, 8), fontsize=8, color=c)
            drawn += 1
        arrow = "higher is better" if spec.higher_is_better else "lower is better"
        ax.set_title(f"{metric} ({shown.label}, {arrow})", fontsize=10)
        ax.set_ylabel(shown.label)
        ax.set_xlabel("run (label, else commit, else run id), oldest first", fontsize=8)
        ax.set_xticks(range(len(runs)))
        ax.set_xticklabels(ticks, rotation=45, ha="right", fontsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    fig.suptitle(f"bars: p5-p95 of each run; dashed: rolling baseline (median of the previous {rule.window} runs); "
                 f"circles: step changes", fontsize=8)
    fig.tight_layout()
    out = Path(out)
    if out.parent and not out.parent.exists():
        raise UserError(f"the folder {out.parent} does not exist; create it or pass another --out path.")
    try:
        fig.savefig(out, dpi=110)
    except OSError as e:
        raise write_failure(e, out, "pass another --out path") from None
    finally:
        plt.close(fig)
    return out, drawn, all_steps
