"""The one exception type for errors a user can cause.

Its message is one sentence that says what to do. The CLI prints it (no traceback) and exits
with ``EXIT_USER_ERROR``; everything else is a bug and keeps its traceback.
"""

EXIT_USER_ERROR = 2


class UserError(Exception):
    """Bad input or an unusable machine state, explained in one actionable sentence."""
