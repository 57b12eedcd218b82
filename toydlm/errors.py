"""The one exception type that means "the user's input is wrong".

The CLI prints a `UserError` as one line (exit status 2). Every other exception is treated as a
bug in toydlm: the CLI says so and writes the traceback to a file. `UserError` subclasses
`ValueError` so that library callers who catch `ValueError` keep working.
"""

from __future__ import annotations


class UserError(ValueError):
    """A mistake in the user's input (a bad option, config, name or file): one line, exit 2."""
