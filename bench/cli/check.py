"""`gptoss check`: will gpt-oss run here, on which path, and what to fix."""

from __future__ import annotations

import os
import shutil
import sys

import click

from bench.cli.options import model_option
from diagnostics.modelref import ModelRef, canonical_model


@click.command("check")
@model_option("Hub id, local checkpoint folder or synthetic:<name> (gpt-oss-20b and gpt-oss-120b are known).", "-m",
              metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON report (schema gptoss-harness/check/1) instead of the table.")
@click.option("--online", is_flag=True, help="Also ask the Hugging Face Hub whether the MXFP4 kernel repo is reachable.")
@click.option("--strict", is_flag=True, help="Exit 1 on a warning too, not only on a failure.")
@click.option("--quiet", "-q", is_flag=True, help="No progress notes on stderr.")
@click.pass_context
def command(ctx: click.Context, model: str, as_json: bool, online: bool, strict: bool, quiet: bool) -> None:
    """Pre-flight: will gpt-oss run on this machine, on MXFP4 kernels or the bf16 fallback?

    Reads the GPU (NVML), the driver, torch, triton, transformers, accelerate, kernels and the
    disk, and asks transformers itself (in a fresh Python process) which path it will take.
    Each finding comes with the command that fixes it. Without --online nothing touches the
    network. Exit code: 0 when nothing fails, 1 when a check fails (with --strict: or warns).

    \b
    Example:
      gptoss check                               # gpt-oss-20b on this machine
      gptoss check --model openai/gpt-oss-120b   # does the 120b fit?
      gptoss check --json > env.json             # the machine-readable report
      gptoss check --strict && echo ready        # CI gate: warnings fail too
    """
    from diagnostics.report import snapshot

    ref = ModelRef.parse(canonical_model(model))  # refused as `gptoss bench` refuses it
    # Test seam: `CliRunner().invoke(main, ["check"], obj={"check_injected": {"facts": facts}})`
    # (or any side effect snapshot() accepts: environ=, nvml=, run=, disk_usage=, sources=, ...).
    injected = dict((ctx.obj or {}).get("check_injected", {})) if isinstance(ctx.obj, dict) else {}

    def progress(note: str) -> None:
        if not quiet:
            click.echo(f"gptoss check: {note} ...", err=True)

    report = snapshot(ref, online, progress=progress, **injected)
    if as_json:
        click.echo(report.to_json())
    else:
        color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
        width = min(max(shutil.get_terminal_size((100, 24)).columns, 80), 120)
        click.echo(report.render_text(color=color, width=width), nl=False)
    ctx.exit(report.exit_code(strict))
