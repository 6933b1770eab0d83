"""`gptoss compare`: fail CI when a run got slower or heavier than its baseline."""

from __future__ import annotations

import sys

import click

from bench.cli.options import out_file_option, write_or_echo


@click.command("compare")
@click.argument("base", type=click.Path(dir_okay=True))
@click.argument("current", type=click.Path(dir_okay=True))
@click.option(
    "--fail-on",
    "fail_on",
    multiple=True,
    metavar="METRIC:PCT%",
    help="Fail when METRIC moves beyond PCT in its worse direction (repeatable; replaces the defaults "
    "decode_tok_s:-5%, ttft_s:+10%, peak_alloc_bytes:+10%).",
)
@click.option("--format", "fmt", type=click.Choice(["text", "markdown", "json"]), default="text", show_default=True,
              help="markdown is made for a pull-request comment.")
@click.option("--allow-mismatch", is_flag=True, help="Compare runs of different GPUs, models or weights paths anyway.")
@click.option("--alpha", type=float, default=0.05, show_default=True, help="Significance level of the rank test.")
@out_file_option("Write the report to this file instead of stdout (the exit code is the same).")
def command(base: str, current: str, fail_on: tuple[str, ...], fmt: str, allow_mismatch: bool, alpha: float, out: str | None) -> None:
    """Compare CURRENT against BASE; exit 1 on a regression.

    Cases are matched on their key (effort, lengths, batch, mode, cache, requested quant and
    attention); load-phase metrics on the load's quant and attention. Per metric: the change of
    the medians, its direction (better or worse, from the metric's definition) and a verdict.

    A metric regresses only when its median moved beyond its threshold in the worse direction
    AND a one-sided Mann-Whitney U rank test (exact, with mid-ranks for ties, up to 30 samples
    in all; normal approximation with tie correction above) finds CURRENT worse at --alpha.
    When the samples are too few for the test ever to reach --alpha (its smallest p-value is
    1/C(n1+n2, n1): under 3 samples a side at 0.05) and for the single-valued load metrics,
    the threshold alone decides; the output says so. A case that ran on BASE and
    fails on CURRENT (oom, error) is a regression.

    Runs on different GPUs, of different models or whose cases took different weights paths
    (mxfp4 vs bf16) are refused unless --allow-mismatch. When something regressed, the
    environment difference (GPU, driver, CUDA, torch, triton, transformers, kernels) is shown.

    Exit status: 0 no regression, 1 regression, 2 usage error.

    \b
    Example:
      gptoss compare baseline/results.json results.json
      gptoss compare base.json cur.json --fail-on decode_tok_s:-3% --fail-on peak_alloc_bytes:+5%
      gptoss compare base.json cur.json --format markdown --out comment.md
    """
    from bench.results import load
    from bench.tracking.compare import compare, parse_thresholds
    from reports.compare import render

    thresholds = parse_thresholds(fail_on) if fail_on else None
    comparison = compare(load(base), load(current), thresholds, alpha=alpha, allow_mismatch=allow_mismatch,
                         base_label=base, current_label=current)
    text = render(comparison, fmt)
    if write_or_echo(text, out):
        click.echo(text.splitlines()[0] if fmt != "json" else ("FAIL" if comparison.failed else "PASS"), err=True)
    if comparison.failed:
        sys.exit(1)
