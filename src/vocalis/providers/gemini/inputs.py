"""The caller's side of a Gemini session: turns without ids, their transcripts, their commit.

Why a module of its own: Gemini never names a caller turn and sends one speech signal only
(``interrupted``, the barge-in). A user item id is minted here when a turn shows up (its
transcription, the barge-in, or the model answering it) — each one counted against the
call's item bound (`providers/item_bound.py`) — and the turn is committed to the server
record when the model answers it or the client ends a manual turn. Transcription deltas are
bounded like every peer's text (`providers/limits.py` `TextBounds`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vocalis.providers.base import (
    InputAudioCommitted,
    InputSpeechStarted,
    InputSpeechStopped,
    InputTranscription,
)
from vocalis.providers.gemini.heard import ServerTurn
from vocalis.providers.gemini.input_audio import RecentInput
from vocalis.providers.gemini.record import ServerRecord
from vocalis.providers.item_bound import ItemBound
from vocalis.providers.limits import TextBounds


@dataclass(slots=True)
class _CallerTurn:
    item_id: str
    transcript: str = ""
    committed: bool = False
    # The model started answering it: later transcription belongs to a new turn.
    answered: bool = False


class CallerTurns:
    """The caller turn in progress (at most one) and how it becomes a user item."""

    def __init__(
        self,
        *,
        new_id: Callable[[str], str],
        item_bound: ItemBound,
        record: ServerRecord,
        recent: RecentInput,
        text_bounds: TextBounds,
    ) -> None:
        self._new_id = new_id
        self._item_bound = item_bound
        self._record = record
        self._input = recent
        self._text_bounds = text_bounds
        self._turn: _CallerTurn | None = None

    def transcribed(self, delta: str) -> InputTranscription:
        """An ``inputTranscription`` delta: the caller's transcript so far (not final)."""
        # A committed turn (manual activity) keeps its transcript until it is answered.
        pending = self._turn
        caller = pending if pending is not None and not pending.answered else self._current()
        caller.transcript += self._text_bounds.admit(caller.item_id, len(caller.transcript), delta)
        return InputTranscription(caller.item_id, caller.transcript.strip(), final=False)

    def barged_in(self) -> InputSpeechStarted:
        """``interrupted``: the caller spoke over the model (about 300 ms ago, VAD's delay)."""
        caller = self._current()
        return InputSpeechStarted(caller.item_id, max(0.0, self._input.end_ms - 300.0))

    def committed(self, transcript: str) -> InputAudioCommitted:
        """A caller turn the client ended itself (manual activity)."""
        turn = self._current()
        turn.transcript = transcript or turn.transcript
        return self._commit(turn)

    def answered(self, out: list[Any]) -> None:
        """The model started a response: the caller's turn ended (stopped, committed, its
        final transcript), and later transcription starts a new one."""
        caller = self._turn
        if caller is not None and not caller.committed:
            out.append(InputSpeechStopped(caller.item_id, self._input.end_ms))
            out.append(self._commit(caller))
        if caller is not None and not caller.answered:
            caller.answered = True
            if caller.transcript:
                text = caller.transcript.strip()
                out.append(InputTranscription(caller.item_id, text, True))
                self._record.set_text(caller.item_id, text)

    def lost(self) -> None:
        """The connection is gone: a turn in progress is never committed."""
        self._turn = None

    def _current(self) -> _CallerTurn:
        if self._turn is None or self._turn.committed or self._turn.answered:
            self._item_bound.take()
            self._turn = _CallerTurn(self._new_id("user"))
        return self._turn

    def _commit(self, caller: _CallerTurn) -> InputAudioCommitted:
        caller.committed = True
        previous = self._record.last_item_id()
        self._record.append(ServerTurn("user", caller.item_id, caller.transcript.strip()))
        return InputAudioCommitted(caller.item_id, previous)
