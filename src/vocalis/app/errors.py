"""The one error type commands turn into a single stderr line and exit code 2.

Why: a user who mistypes an agent path, points at a dead endpoint or passes a broken WAV must
see one clear sentence, not a traceback. Anything raised as `UsageError` is that sentence.
"""

from __future__ import annotations

EXIT_USAGE = 2
EXIT_FAILED = 1


class UsageError(Exception):
    """A problem with what the user asked for (bad reference, endpoint, file): exit code 2."""
