"""Options and output shared by several commands."""

from __future__ import annotations

import click

from bench.tracking.history import DEFAULT_DB, ENV_VAR
from diagnostics.errors import UserError, write_failure
from diagnostics.modelref import DEFAULT_MODEL



def not_empty(ctx: click.Context, param: click.Parameter, value):
    """A callback: an option given an empty value (``--revision "$UNSET"``) is refused instead of
    being taken as if it had not been given."""
    if isinstance(value, str) and not value.strip():
        raise UserError(f"{param.opts[0]} is empty; give a value or leave the option out.")
    return value


class Folder(click.Path):
    """A folder option that refuses an empty value (``--out ""`` would otherwise mean the current folder)."""

    def __init__(self, **kwargs):
        super().__init__(file_okay=False, **kwargs)

    def convert(self, value, param, ctx):
        if isinstance(value, str) and not value.strip():
            raise UserError(f"{param.opts[0] if param else 'the folder'} is empty; give a folder or leave the option out.")
        return super().convert(value, param, ctx)


def quiet_option(fn):
    return click.option("--quiet", "-q", is_flag=True, help="No progress bar.")(fn)


def model_option(help: str, *names: str, **kw):
    """``--model`` (default: the 20b hub id), with the command's own help text."""
    return click.option("--model", *names, "model", default=DEFAULT_MODEL, show_default=True, help=help, **kw)


def out_file_option(help: str = "Write to this file instead of stdout."):
    return click.option("--out", "out", type=click.Path(dir_okay=False), default=None, callback=not_empty, help=help)


def db_option(fn):
    return click.option(
        "--db", "db", type=click.Path(dir_okay=False), envvar=ENV_VAR, default=DEFAULT_DB, callback=not_empty,
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
