"""`gptoss export`: a results file in the formats of existing benchmark dashboards."""

from __future__ import annotations

import click

from bench.cli.options import out_file_option, write_or_echo


@click.command("export")
@click.argument("results_path", metavar="RESULTS", type=click.Path(dir_okay=True))
@click.option("--format", "fmt", type=click.Choice(["pytest-benchmark", "github-action-benchmark"]), required=True,
              help="Target format.")
@click.option("--tool", type=click.Choice(["customBiggerIsBetter", "customSmallerIsBetter"]), default="customBiggerIsBetter",
              show_default=True, help="github-action-benchmark only: which of its tools the file is for; picks the metrics "
              "of that direction.")
@click.option("--metric", "metrics", multiple=True, help="github-action-benchmark only: export just these metrics (repeatable).")
@click.option("--commit", default=None, help="pytest-benchmark commit_info id [default: $GITHUB_SHA, else git HEAD of the cwd].")
@out_file_option()
def command(results_path: str, fmt: str, tool: str, metrics: tuple[str, ...], commit: str | None, out: str | None) -> None:
    """Export RESULTS as pytest-benchmark JSON or github-action-benchmark JSON.

    pytest-benchmark: the document `pytest --benchmark-json` writes (machine_info, commit_info,
    benchmarks with full stats and raw rounds). It measures durations, smaller is better: time
    metrics go as they are, throughput (tok/s) goes inverted as seconds per token
    (decode_tok_s -> decode_s_per_tok), memory and token counts ride along in extra_info.

    github-action-benchmark: a list of {name, unit, value, range, extra} for the action's
    customBiggerIsBetter tool (throughput, roofline fraction) or customSmallerIsBetter tool
    (times, memory): one file per tool, chosen with --tool.

    \b
    Example:
      gptoss export results.json --format pytest-benchmark --out pytest-benchmark.json
      gptoss export results.json --format github-action-benchmark --tool customBiggerIsBetter --out bigger.json
      gptoss export results.json --format github-action-benchmark --tool customSmallerIsBetter --out smaller.json
    """
    from bench.results import load
    from bench.tracking.export import dumps, export
    from bench.tracking.history import detect_commit

    r = load(results_path)
    sha = detect_commit(commit) if fmt == "pytest-benchmark" else None
    doc = export(r, fmt, commit=sha, tool=tool, metrics=list(metrics) or None)
    if write_or_echo(dumps(doc), out):
        n = len(doc["benchmarks"]) if fmt == "pytest-benchmark" else len(doc)
        click.echo(f"wrote {out} ({n} entries)", err=True)
