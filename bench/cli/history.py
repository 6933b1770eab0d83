"""`gptoss history`: an embedded SQLite history of runs, trend plots and step-change flags."""

from __future__ import annotations

import json

import click

from bench.cli.options import db_option, not_empty


def _rule_options(f):
    f = click.option("--window", type=click.IntRange(1, 1000), default=5, show_default=True,
                     help="Previous runs in the rolling baseline (at least 3 needed before a run can be flagged).")(f)
    f = click.option("--step-pct", type=click.FloatRange(0, None), default=5.0, show_default=True,
                     help="A step must move the median by more than this percentage (and beyond 3 robust sigmas).")(f)
    return f


def _rule(window: int, step_pct: float):
    from bench.results.trends import MIN_BASELINE, StepRule

    return StepRule(window=window, min_baseline=min(MIN_BASELINE, window), pct=step_pct)


@click.group("history")
def command() -> None:
    """Keep runs in a SQLite history; list, show and plot trends with step changes flagged.

    Runs are keyed by GPU, versions (driver, CUDA, torch, triton, transformers, kernels) and git
    commit; one row per case metric (median, mean, stdev, p5, p95, n). The database is one local
    file (WAL journal, busy timeout, transactional writes), safe with several writers at once.

    A step change: a run's median differs from the rolling baseline -- the median of the previous
    --window runs of the same model, GPU, case and metric -- by more than --step-pct AND by more
    than 3 robust sigmas (1.4826 x MAD of those previous medians, combined with the run's own
    standard error), so noise alone does not flag. After a step the baseline restarts at that
    run, so each step is flagged once, at the run that introduced it.

    \b
    Example:
      gptoss history add results.json --label nightly
      gptoss history list
      gptoss history show latest
      gptoss history plot --metric decode_tok_s --out decode.png
    """


@command.command("add")
@click.argument("results_path", metavar="RESULTS", type=click.Path(dir_okay=True))
@click.option("--commit", default=None, help="Git commit of the code measured [default: $GITHUB_SHA, else git HEAD of the cwd].")
@click.option("--label", default=None, help="A short label for the run (branch, PR, 'nightly').")
@db_option
def add_cmd(results_path: str, commit: str | None, label: str | None, db: str | None) -> None:
    """Add a results file to the history (a run already there is left as it is).

    \b
    Example:
      gptoss history add gptoss-results/run-1/results.json --commit $GITHUB_SHA --label main
    """
    from bench.results import load
    from bench.tracking.history import History, detect_commit

    r = load(results_path)
    sha = detect_commit(commit)
    with History(db) as h:
        outcome = h.add(r, commit=sha, label=label, source=str(results_path))
        path = h.path
    if outcome.added:
        click.echo(f"added run {outcome.run_id} ({outcome.cases} cases/loads, {outcome.metrics} metrics, commit {sha or 'unknown'}) to {path}")
    else:
        click.echo(f"run {outcome.run_id} is already in {path}; nothing added")


@command.command("list")
@click.option("--gpu", default=None, help="Only runs on this GPU (name as recorded; 'cpu' for CPU runs).")
@click.option("--model", default=None, help="Only runs of this model id.")
@click.option("--limit", type=click.IntRange(1, None), default=30, show_default=True, help="Show the newest N runs.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@_rule_options
@db_option
def list_cmd(gpu: str | None, model: str | None, limit: int, fmt: str, window: int, step_pct: float, db: str | None) -> None:
    """List runs, oldest first, with the step changes each one introduced.

    \b
    Example:
      gptoss history list --gpu "NVIDIA H100 80GB HBM3" --limit 10
    """
    from bench.tracking.history import History
    from bench.tracking.steps import steps as find_steps
    from reports.history import render_list

    rule = _rule(window, step_pct)
    with History(db, create=False) as h:
        runs = h.runs(gpu=gpu, model=model)[-limit:]
        steps = find_steps(h, rule, gpu=gpu, model=model)
    shown = {r.run_id for r in runs}
    steps = [s for s in steps if s.run_id in shown]
    if fmt == "json":
        click.echo(json.dumps({"runs": [r.to_dict() for r in runs], "steps": [s.to_dict() for s in steps], "rule": rule.describe()}, indent=1))
        return
    if not runs:
        click.echo("no runs match")
        return
    click.echo(render_list(runs, steps), nl=False)
    if steps:
        click.echo(f"{len(steps)} step change(s); `gptoss history show RUN` for details ({rule.describe()})")


@command.command("show")
@click.argument("run", default="latest")
@click.option("--metric", "metrics", multiple=True, help="Only these metrics (repeatable).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@_rule_options
@db_option
def show_cmd(run: str, metrics: tuple[str, ...], fmt: str, window: int, step_pct: float, db: str | None) -> None:
    """Show one run (its id, a unique prefix, or `latest`) against its rolling baseline.

    \b
    Example:
      gptoss history show latest --metric decode_tok_s
    """
    from bench.tracking.history import History
    from bench.tracking.steps import show_run, steps
    from reports.history import render_show

    _check_metrics(metrics)
    rule = _rule(window, step_pct)
    with History(db, create=False) as h:
        r = h.run(run)
        if fmt == "json":
            found = [s.to_dict() for s in steps(h, rule, gpu=r.gpu_name, model=r.model_id) if s.run_id == r.run_id]
            rows = [m for m in h.case_metrics(r.run_id) if not metrics or m["metric"] in metrics]
            click.echo(json.dumps({"run": r.to_dict(), "metrics": rows, "steps": found, "rule": rule.describe()}, indent=1))
            return
        show = show_run(h, r, rule, list(metrics) or None)
    click.echo(render_show(show, rule), nl=False)


def _check_metrics(metrics) -> None:
    from bench.results import METRICS
    from diagnostics.errors import UserError

    for m in metrics:
        if m not in METRICS:
            raise UserError(f"unknown metric {m!r}; valid metrics: {', '.join(METRICS)}.")


@command.command("plot")
@click.option("--metric", "metrics", multiple=True, default=("decode_tok_s",), show_default=True,
              help="Metric to draw (repeatable: one panel each).")
@click.option("--case", "cases", multiple=True, help="Only these case ids (repeatable) [default: all].")
@click.option("--gpu", default=None, help="Only runs on this GPU ('cpu' for CPU runs).")
@click.option("--model", default=None, help="Only runs of this model id.")
@click.option("--out", "out", type=click.Path(dir_okay=False), default="gptoss-history.png", show_default=True, callback=not_empty,
              help="PNG (or any matplotlib format by its extension) to write.")
@_rule_options
@db_option
def plot_cmd(metrics: tuple[str, ...], cases: tuple[str, ...], gpu: str | None, model: str | None, out: str,
             window: int, step_pct: float, db: str | None) -> None:
    """Draw the trend of metrics over runs, with the rolling baseline and step changes marked.

    \b
    Example:
      gptoss history plot --metric decode_tok_s --metric ttft_s --out trend.png
      gptoss history plot --metric decode_tok_s --case low/out256/in128/b1/fixed/dynamic/auto/auto/c1
    """
    from bench.tracking.history import History
    from bench.tracking.steps import trends
    from reports.history import plot

    _check_metrics(metrics)
    rule = _rule(window, step_pct)
    with History(db, create=False) as h:
        runs = h.runs(gpu=gpu, model=model)
        found = trends(h, list(metrics), rule, cases=list(cases) or None, gpu=gpu, model=model)
    path, drawn, steps = plot(found, runs, list(metrics), out, rule)
    worse = sum(1 for s in steps if s.direction == "worse")
    click.echo(f"wrote {path} ({drawn} series, {len(steps)} step change(s), {worse} worse)")
