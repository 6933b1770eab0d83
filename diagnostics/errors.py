"""The one exception type for errors a user can cause, and the one-line text of any error.

A ``UserError``'s message is one sentence that says what to do; the CLI prints it (no traceback)
and exits with its ``exit_code``: ``EXIT_USER_ERROR`` (2) for bad input, ``EXIT_ENVIRONMENT`` (1)
for an ``EnvironmentFailure`` such as a full disk. Everything else is a bug and keeps its
traceback. It lives here, in the package everything else may import, so that the model reference
parsed here and the benchmark side raise the same error.
"""

from __future__ import annotations

import errno

EXIT_USER_ERROR = 2
EXIT_ENVIRONMENT = 1

# A write that failed because the machine ran out of something, not because of the place chosen.
_OUT_OF_SPACE = {errno.ENOSPC, errno.EDQUOT}


class UserError(Exception):
    """Bad input or an unusable machine state, explained in one actionable sentence."""

    exit_code = EXIT_USER_ERROR


class EnvironmentFailure(UserError):
    """The machine, not the input, failed (a full disk, a quota): one sentence, exit code 1."""

    exit_code = EXIT_ENVIRONMENT


def write_failure(exc: OSError, where: object, fix: str, full: str | None = None) -> UserError:
    """The one sentence for an OSError raised while writing ``where``.

    ``fix`` says what to do about a place that cannot be written (e.g. "pass --out a folder you
    can write to"): a ``UserError``. A full disk or quota is an ``EnvironmentFailure`` (exit 1)
    whose remedy is ``full``, by default "free some space or " + ``fix``."""
    why = exc.strerror or type(exc).__name__
    if exc.errno in _OUT_OF_SPACE:
        return EnvironmentFailure(f"the disk holding {where} is full ({why}); {full or 'free some space or ' + fix}.")
    return UserError(f"cannot write {where} ({why}); {fix}.")


def one_line(text: object, limit: int = 300) -> str:
    """``text`` with its whitespace runs collapsed to single spaces, cut to ``limit`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def error_line(exc: BaseException, limit: int = 500) -> str:
    """``Type: first line of the message``: how a recorded failure names its cause."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"[:limit]
