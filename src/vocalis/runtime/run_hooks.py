"""The callbacks a response run hands its playout and tool round.

Why not the run's bound methods: the run holds its playout and tool round, and they would
hold the run back through those methods — a cycle. Every finished response (its segments,
channels, tasks and texts, tens of kilobytes) then waited for the cyclic collector instead of
being freed by reference counting when the session let go of it, so a speaking session's
memory and the collector's full-collection work grew with the responses of the last minute.
These hooks reach the run only until it settles (`release`), then do nothing.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["RunHooks"]


class _Run(Protocol):
    def progress(self) -> None: ...

    def first_frame(self) -> None: ...


class RunHooks:
    """`progress` / `first_frame` forwarded to a run until `release()`."""

    __slots__ = ("_run",)

    def __init__(self, run: _Run) -> None:
        self._run: _Run | None = run

    def progress(self) -> None:
        run = self._run
        if run is not None:
            run.progress()

    def first_frame(self) -> None:
        run = self._run
        if run is not None:
            run.first_frame()

    def release(self) -> None:
        """The run settled: drop the reference back to it (nothing reads its hooks now)."""
        self._run = None
