"""Options and output shared by several commands."""

from __future__ import annotations

import click

from bench.tracking.history import DEFAULT_DB, ENV_VAR
from diagnostics.errors import write_failure
from diagnostics.modelref import DEFAULT_MODEL



def quiet_option(fn):
    return click.option("--quiet", "-q", is_flag=True, help="No progress bar.")(fn)


def model_option(help: str, *names: str, **kw):
    """``--model`` (default: the 20b hub id), with the command's own help text."""
    return click.option("--model", *names, "model", default=DEFAULT_MODEL, show_default=True, help=help, **kw)


def out_file_option(help: str = "Write to this file instead of stdout."):
    return click.option("--out", "out", type=click.Path(dir_okay=False), default=None, help=help)


def db_option(fn):
    return click.option(
        "--db", "db", type=click.Path(dir_okay=False), envvar=ENV_VAR, default=DEFAULT_DB,
        show_default=True, show_envvar=True, help="History database file.",
    )(fn)


def write_or_echo(text: str, out: str | None) -> bool:
    """``text`` to the file ``out``, or to stdout when there is none; True when a file was written."""
    if not out:
        click.echo(text, nl=False)
        return False
    try:
        with open(out, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as e:
        raise write_failure(e, out, "pass another --out path") from None
    return True
