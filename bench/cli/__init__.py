"""The `gptoss` command line: a thin click group that wires the packages together.

Each command lives in ``bench/commands/<name>.py`` and keeps heavy imports (torch,
transformers, matplotlib) inside its function, so ``gptoss --help`` stays instant.
"""

from __future__ import annotations

import importlib
import sys

import click

from bench import __version__
from bench.results.errors import EXIT_USER_ERROR, UserError

# Module names under bench/commands, each exposing a click command named `command`.
COMMANDS: list[str] = ["check", "bench", "synthesize", "report", "compare", "history", "export"]


class HarnessGroup(click.Group):
    """Turns a UserError anywhere below into one line on stderr and a non-zero exit."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except UserError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(EXIT_USER_ERROR)


@click.group(cls=HarnessGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="gptoss")
def main() -> None:
    """Pre-flight checks and benchmarks for gpt-oss on Hugging Face transformers.

    \b
    Example:
      gptoss check                          # will gpt-oss-20b run here, and on which path?
      gptoss bench --model synthetic:tiny   # a benchmark that runs anywhere, CPU included
    """


for _name in COMMANDS:
    main.add_command(importlib.import_module(f"bench.cli.{_name}").command)
