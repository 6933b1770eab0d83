"""Errors a user can cause. ``UserError`` is shared with diagnostics (one type for the whole
tool, turned into one sentence and exit code 2 by the CLI); ``ResultsError`` is a results file
that cannot be used."""

from diagnostics.errors import EXIT_USER_ERROR, EnvironmentFailure, UserError, write_failure

__all__ = ["EXIT_USER_ERROR", "EnvironmentFailure", "ResultsError", "UserError", "write_failure"]


class ResultsError(UserError):
    """A results file that cannot be used; the message is one sentence that says what to do."""
