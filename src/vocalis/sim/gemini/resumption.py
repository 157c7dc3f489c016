"""Session resumption handles: which history a ``sessionResumption.handle`` restores.

The service hands out a new handle at points where the session can be resumed (never
mid-generation or while tool calls are pending) and restores *its* history on a new
connection — including everything the model sent but the caller never heard. The store is
per server (shared by all connections, as handles outlive the connection that got them) and
bounded, oldest handles forgotten first.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from vocalis.sim.gemini.history import GeminiHistory

MAX_HANDLES = 1000


@dataclass(frozen=True, slots=True)
class Resumable:
    """What a handle restores: the history at the time it was issued."""

    history: GeminiHistory
    session_index: int


class ResumptionStore:
    def __init__(self, limit: int = MAX_HANDLES) -> None:
        self._handles: OrderedDict[str, Resumable] = OrderedDict()
        self._limit = limit
        self._counter = 0

    def issue(self, history: GeminiHistory, session_index: int) -> str:
        """A new handle for a snapshot of ``history``."""
        self._counter += 1
        handle = f"vocalis-sim-resume-{session_index}-{self._counter}"
        self._handles[handle] = Resumable(history.snapshot(), session_index)
        while len(self._handles) > self._limit:
            self._handles.popitem(last=False)
        return handle

    def restore(self, handle: str) -> Resumable | None:
        """The state behind ``handle`` (a fresh copy each time), or ``None`` if unknown."""
        state = self._handles.get(handle)
        if state is None:
            return None
        return Resumable(state.history.snapshot(), state.session_index)
