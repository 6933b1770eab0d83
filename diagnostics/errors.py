"""The one exception type for errors a user can cause, and the one-line text of any error.

A ``UserError``'s message is one sentence that says what to do; the CLI prints it (no traceback)
and exits with ``EXIT_USER_ERROR``. Everything else is a bug and keeps its traceback. It lives
here, in the package everything else may import, so that the model reference parsed here and the
benchmark side raise the same error.
"""

from __future__ import annotations

EXIT_USER_ERROR = 2


class UserError(Exception):
    """Bad input or an unusable machine state, explained in one actionable sentence."""


def one_line(text: object, limit: int = 300) -> str:
    """``text`` with its whitespace runs collapsed to single spaces, cut to ``limit`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def error_line(exc: BaseException, limit: int = 500) -> str:
    """``Type: first line of the message``: how a recorded failure names its cause."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"[:limit]
