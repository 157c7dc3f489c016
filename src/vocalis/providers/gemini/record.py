"""The server record: what the Gemini service holds in its history, turn by turn.

Why a module of its own: Gemini Live cannot truncate or delete, so the client keeps its own
account of the service's history (model turns as *sent*), the input of the heard-contract
strategy (`heard.py`); and a session resumed from a handle holds that history as it was
when the handle was issued. The protocol core (`protocol.py`) appends turns as the service
reports them; the shell re-seeds, resumes and corrects through this record.
"""

from __future__ import annotations

from vocalis.providers.gemini.heard import ServerTurn

# Resumption handles remembered (newest last): a resume uses the latest one, but a handle
# read before a switch may be overtaken by newer ones while the new connection opens. A
# service sending handles without end must not grow the call (#14).
KEPT_HANDLES = 8


class ServerRecord:
    """The service's history as this client knows it, and its resumption handles."""

    def __init__(self) -> None:
        self.turns: list[ServerTurn] = []
        self.resume_handle: str | None = None
        # Handle -> how many turns the service held when it issued it.
        self._handle_lengths: dict[str, int] = {}

    def append(self, turn: ServerTurn) -> None:
        self.turns.append(turn)

    def settled(self, unsettled: frozenset[str]) -> list[ServerTurn]:
        """The turns a heard checkpoint may judge: not those of a response still in progress.

        A checkpoint can land while the service already streams its next response (the answer
        after a tool output arrives fast); that turn is not unheard, it is not played yet, and
        judging it would re-seed it away.
        """
        if not unsettled:
            return self.turns
        return [turn for turn in self.turns if turn.item_id not in unsettled]

    def last_item_id(self) -> str | None:
        return self.turns[-1].item_id if self.turns else None

    def set_text(self, item_id: str, text: str) -> None:
        """The final text of a turn recorded before it was known (a caller's transcript)."""
        for turn in self.turns:
            if turn.item_id == item_id:
                turn.text = text

    def accept_heard(self, heard: dict[str, str]) -> None:
        """A correction note told the model what was heard: stop reporting these turns."""
        for turn in self.turns:
            if turn.item_id in heard:
                turn.text = heard[turn.item_id]

    def new_handle(self, handle: str) -> None:
        """The service issued a resumption handle for its history as it is now."""
        self.resume_handle = handle
        self._handle_lengths.pop(handle, None)
        self._handle_lengths[handle] = len(self.turns)
        while len(self._handle_lengths) > KEPT_HANDLES:
            del self._handle_lengths[next(iter(self._handle_lengths))]

    def reseeded(self, record: list[ServerTurn]) -> None:
        """A fresh connection was seeded: the server holds exactly ``record``."""
        self.turns = list(record)
        self.resume_handle = None
        self._handle_lengths.clear()

    def resumed(self, handle: str) -> None:
        """A connection resumed ``handle``: the server holds the record as of that handle."""
        length = self._handle_lengths.get(handle)
        if length is not None:
            del self.turns[length:]
