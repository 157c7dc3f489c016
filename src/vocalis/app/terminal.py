"""Rich consoles for the commands: no hard wrapping when the output is not a terminal.

Why: rich assumes 80 columns when stdout is a pipe or a file, and wraps long transcript lines
there — a log file or a CI job then shows sentences cut mid-word. Off a terminal, lines are
written whole (soft wrap) and without colour codes; on a terminal nothing changes.
"""

from __future__ import annotations

from rich.console import Console


def make_console(*, stderr: bool = False, quiet: bool = False) -> Console:
    console = Console(stderr=stderr, highlight=False, quiet=quiet)
    if not console.is_terminal:
        console.soft_wrap = True
    return console
