"""Errors a user can cause, and how they reach the terminal.

A :class:`UserError` is bad input — a wrong name, a missing file, NaN in the data. The CLI
prints its message as one line and exits with code 2; it never shows a traceback. Anything
else that escapes is a bug in babysit and may raise.
"""


class UserError(Exception):
    """Bad input from the user. The message names what is wrong and how to fix it."""

    exit_code = 2

