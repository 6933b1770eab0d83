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
@click.option("--online", is_flag=True,
              help="Also ask the Hugging Face Hub (the MXFP4 kernel repo and its builds, the chat template) and PyPI (released versions).")
@click.option("--strict", is_flag=True, help="Exit 1 on a warning too, not only on a failure.")
@click.option("--quiet", "-q", is_flag=True, help="No progress notes on stderr.")
@click.option("--plan", "as_plan", is_flag=True,
              help="Print the pip commands that move this runtime to the MXFP4 path (exit 1 when no package change can).")
@click.option("--target", metavar="NAME",
              help="What-if: these packages on another runtime's GPU and driver: colab-t4, colab-l4, colab-a100, h100, h200.")
@click.option("--gpu", metavar="NAME", help="What-if GPU by name (e.g. T4, L4, A10G, H100 80GB HBM3); with --driver.")
@click.option("--driver", metavar="VERSION", help="What-if NVIDIA driver version (e.g. 550.54.15).")
@click.option("--attn", metavar="IMPL",
              help="attn_implementation to check (eager, sdpa, flash_attention_3, kernels-community/vllm-flash-attn3).")
@click.pass_context
def command(ctx: click.Context, model: str, as_json: bool, online: bool, strict: bool, quiet: bool, as_plan: bool,
            target: str | None, gpu: str | None, driver: str | None, attn: str | None) -> None:
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
      gptoss check --plan                        # the pip commands to the MXFP4 path
      gptoss check --target colab-t4             # would these packages keep MXFP4 on a Colab T4?
    """
    from diagnostics.ecosystem_checks import parse_attn
    from diagnostics.report import snapshot
    from diagnostics.targets import resolve_target

    ref = ModelRef.parse(canonical_model(model))  # refused as `gptoss bench` refuses it
    attn = parse_attn(attn)
    what_if = resolve_target(target, gpu, driver)
    # Test seam: `CliRunner().invoke(main, ["check"], obj={"check_injected": {"facts": facts}})`
    # (or any side effect snapshot() accepts: environ=, nvml=, run=, disk_usage=, sources=, ...).
    injected = dict((ctx.obj or {}).get("check_injected", {})) if isinstance(ctx.obj, dict) else {}

    def progress(note: str) -> None:
        if not quiet:
            click.echo(f"gptoss check: {note} ...", err=True)

    report = snapshot(ref, online, progress=progress, target=what_if, attn=attn, **injected)
    if as_plan and not as_json:
        click.echo(report.render_plan(), nl=False)
        ctx.exit(0 if report.plan.reaches_mxfp4 else 1)
    if as_json:
        click.echo(report.to_json())
    else:
        color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
        width = min(max(shutil.get_terminal_size((100, 24)).columns, 80), 120)
        click.echo(report.render_text(color=color, width=width), nl=False)
    ctx.exit(report.exit_code(strict))
