"""The `gptoss` command line: the one place that wires the packages together.

A click group with one module per command, imported explicitly below. Each command keeps its
heavy imports (torch, transformers, matplotlib) inside its function, so ``gptoss --help`` stays
instant. A ``UserError`` anywhere below becomes one sentence on stderr and its exit code (2 for bad
input, 1 for an environment failure such as a full disk), here and nowhere else.
"""

from __future__ import annotations

import sys

import click

from bench import __version__
from bench.cli import bench, check, compare, export, history, report, synthesize
from bench.cli.launch import apply_safe_env
from diagnostics.errors import UserError


class HarnessGroup(click.Group):
    """Turns a UserError anywhere below into one line on stderr and a non-zero exit."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except UserError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(e.exit_code)


@click.group(cls=HarnessGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="gptoss")
def main() -> None:
    """Pre-flight checks and benchmarks for gpt-oss on Hugging Face transformers.

    \b
    Example:
      gptoss check                          # will gpt-oss-20b run here, and on which path?
      gptoss bench --model synthetic:tiny   # a benchmark that runs anywhere, CPU included
    """
    apply_safe_env()  # NVLink multicast off in every process the harness starts (bench.cli.launch)


for _module in (check, bench, synthesize, report, compare, history, export):
    main.add_command(_module.command)
