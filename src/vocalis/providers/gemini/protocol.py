"""The Gemini Live protocol as a state machine with no I/O (in the style of h11).

Server message dicts go in (:meth:`GeminiProtocol.receive`); out come plain values: the
neutral core events of `providers/core_events.py` (the shell's `GenerationRouter` turns them
into the runtime's `Generation` streams), session `ProviderEvent`s, and two connection
signals for the shell (:class:`SetupDone`, :class:`GoAway`). No futures, channels or clock.
Gemini's model differs from OpenAI's in ways absorbed here, so the runtime does not see them:

* there are no response or item ids: one model turn is one response holding one message;
  both get ids minted here, unique per session;
* a ``toolCall`` ends the response (the model waits for every response; its continuation
  after the ``toolResponse`` is a new response, answering the runtime's follow-up request);
* ``generationComplete`` ends the response; ``turnComplete`` after it only means the model
  assumed playback ended; ``interrupted`` (the caller barged in) ends it ``cancelled`` and is
  reported as caller speech, the only speech signal Gemini sends;
* the service answers by itself once every tool call has its response (or a manual turn was
  committed). That response is **held back** (its events buffered here) until the runtime
  asks for its reply (:meth:`claim_held`), so it never starts while earlier audio still plays;
* caller turns have no ids either: a user item id is minted when a turn shows up (its
  transcription, the barge-in, or the model answering it) and committed when the model answers.

It also fills the **server record** (:mod:`~vocalis.providers.gemini.record`): what the
service holds in its history, turn by turn (model turns as *sent*: the transcript of every
audio chunk received) — the input of the heard-contract strategy in
:mod:`~vocalis.providers.gemini.heard`.

Jobs are split by module: `responses.py` (the running and the held-back response, their
messages and value events), `inputs.py` (caller turns and their transcripts), `record.py`
(the server record), `wire.py` (message shapes); this module reads the server's messages,
keeps the tool calls and takes the client-side facts.
"""

from __future__ import annotations

import itertools
import json
import logging
from dataclasses import dataclass
from typing import Any, TypeAlias

from vocalis.providers.base import (
    ItemAccount,
    Modality,
    ProviderEvent,
    ProviderLimits,
    ToolCall,
)
from vocalis.providers.core_events import AudioDelta, CoreEvent, TextDelta
from vocalis.providers.gemini.heard import ServerTurn, TurnKind
from vocalis.providers.gemini.input_audio import RecentInput
from vocalis.providers.gemini.inputs import CallerTurns
from vocalis.providers.gemini.record import ServerRecord
from vocalis.providers.gemini.responses import ModelTurn, ResponseBook
from vocalis.providers.gemini.wire import OUTPUT_RATE, decode_audio, duration_s, get
from vocalis.providers.item_bound import ItemBound, OverItemBound
from vocalis.providers.limits import TextBounds, admit_item_audio
from vocalis.utils.logsafe import WarnLimiter

logger = logging.getLogger(__name__)

_MS_PER_SAMPLE = 1000.0 / OUTPUT_RATE


@dataclass(frozen=True, slots=True)
class SetupDone:
    """``setupComplete``: the connection is ready."""


@dataclass(frozen=True, slots=True)
class GoAway:
    """The service will end this connection in ``seconds_left``."""

    seconds_left: float


Output: TypeAlias = CoreEvent | ProviderEvent | SetupDone | GoAway


class GeminiProtocol:
    """One session's protocol state, across connections (ids never repeat)."""

    def __init__(
        self,
        *,
        modality: Modality = "audio",
        limits: ProviderLimits | None = None,
        warn_limiter: WarnLimiter | None = None,
    ) -> None:
        # Bounds on what the peer may make one call hold (dropped past them, logged once).
        self.limits = limits or ProviderLimits()
        self._warn = warn_limiter or WarnLimiter(logger)
        self._text_bounds = TextBounds(self.limits, self._warn)
        # Model, caller and function-call items: counted per call (`providers/item_bound.py`).
        self.item_bound = ItemBound(self.limits)
        self._ids = itertools.count(1)
        self.call_names: dict[str, str] = {}
        self.cancelled_calls: set[str] = set()
        # Calls of the last toolCall still waiting for a response; once all are answered (or
        # the client ended a manual turn) the service's own next response is held back.
        self._open_calls: set[str] = set()
        self.record = ServerRecord()
        # The caller audio of this provider session's input timeline (16 kHz, ms from the
        # last reconnect): its one owner. The shell appends to it and replays from it; the
        # core reads the position for its speech events.
        self.input = RecentInput()
        # Where the input timeline was when the last response started (a barge-in that
        # follows is after it: a re-seeded session replays the caller's audio from here).
        self.generation_input_ms = 0.0
        self.responses = ResponseBook(
            modality=(modality,), new_id=self.new_id, item_bound=self.item_bound, record=self.record
        )
        self._callers = CallerTurns(
            new_id=self.new_id,
            item_bound=self.item_bound,
            record=self.record,
            recent=self.input,
            text_bounds=self._text_bounds,
        )

    # -- state queries ---------------------------------------------------------------------

    @property
    def server_record(self) -> list[ServerTurn]:
        """What the service holds, turn by turn (`record.py`)."""
        return self.record.turns

    @property
    def usage(self) -> dict[str, Any] | None:
        """The latest usage report (a response's end carries it)."""
        return self.responses.usage

    @property
    def generating(self) -> bool:
        """A response is streaming to the runtime (not held back, not cancelled locally)."""
        return self.responses.generating

    @property
    def unsettled_items(self) -> frozenset[str]:
        """Model items of a response still streaming, or held back (even complete): unplayed."""
        return self.responses.unsettled_items

    @property
    def holding(self) -> bool:
        """A held-back response exists (claim it with :meth:`claim_held`)."""
        return self.responses.held is not None

    @property
    def idle(self) -> bool:
        """No response running, held back, or expected from the service on its own."""
        return self.responses.idle and not self._open_calls

    @property
    def self_start_expected(self) -> bool:
        """The service will answer on its own (tool responses complete, manual turn ended)."""
        return self.responses.hold_next or self.responses.held is not None

    def expect_generation(self, request_id: str) -> None:
        """The next response the service starts answers ``request_id`` (FIFO)."""
        self.responses.expect(request_id)

    def drop_expectation(self, request_id: str) -> None:
        self.responses.drop_expectation(request_id)

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):06d}"

    def claim_held(self, request_id: str | None) -> list[CoreEvent]:
        """Release the held-back response as the answer to ``request_id`` (``None``: as the
        server's own); its buffered events, ``ResponseStarted`` first. Empty if none."""
        return self.responses.claim_held(request_id)

    # -- client-side facts the record needs ------------------------------------------------

    def caller_committed(self, transcript: str = "") -> list[Output]:
        """A caller turn the client ended itself (manual activity): its commit, or — a caller
        item past `max_call_items` — the error that ends the call."""
        out: list[Output] = []
        try:
            out.append(self._callers.committed(transcript))
        except OverItemBound:
            self.item_bound.refused(out)
            return out
        self.responses.hold_next = True
        return out

    def tool_output_sent(self, call_id: str, output_item_id: str, output: str) -> None:
        self._open_calls.discard(call_id)
        record = ServerTurn("function_response", output_item_id, output, call_id=call_id)
        self.record.append(record)
        if not self._open_calls:
            self.responses.hold_next = True

    def client_turn_sent(self, item_id: str, role: str, text: str) -> None:
        kind: TurnKind = "model" if role == "assistant" else "user"
        self.record.append(ServerTurn(kind, item_id, text))

    def cancel_local(self) -> list[Output]:
        """The runtime cancelled the running turn: its streams end now (Gemini has no cancel;
        the service goes on and its words land in the record, for the heard checkpoint)."""
        out: list[Output] = []
        self.responses.cancel_local(out)
        return out

    def connection_replaced(self) -> list[Output]:
        """A new connection replaced the old one (re-seed, planned resume): what the old one
        was still streaming ends ``disconnected``, its held-back answer is dropped and its
        unanswered calls count as cancelled (the new session never saw them)."""
        out: list[Output] = []
        self.responses.connection_ended("connection_replaced", out)
        self.cancelled_calls.update(self._open_calls)
        self._open_calls.clear()
        return out

    def connection_lost(self) -> list[Output]:
        """The socket is gone: every stream ends ``disconnected`` (nothing may hang)."""
        out: list[Output] = []
        self._callers.lost()
        self.responses.connection_ended("connection_lost", out)
        self._open_calls.clear()
        return out

    # -- server messages -------------------------------------------------------------------

    def receive(self, message: dict[str, Any]) -> list[Output]:
        out: list[Output] = []
        try:
            self._on_message(message, out)
        except OverItemBound:  # one item past `max_call_items`: the call ends
            self.item_bound.refused(out)
        return out

    def _on_message(self, message: dict[str, Any], out: list[Output]) -> None:
        if get(message, "setupComplete") is not None:
            out.append(SetupDone())
        content = get(message, "serverContent")
        if isinstance(content, dict):
            self._on_content(content, out)
        tool_call = get(message, "toolCall")
        if isinstance(tool_call, dict):
            self._on_tool_call(tool_call, out)
        cancellation = get(message, "toolCallCancellation")
        if isinstance(cancellation, dict):
            ids = [i for i in get(cancellation, "ids") or [] if str(i) in self.call_names]
            self.cancelled_calls.update(map(str, ids))  # calls it made (#14: not any id)
            self._open_calls.difference_update(map(str, ids))
        go_away = get(message, "goAway")
        if isinstance(go_away, dict):
            out.append(GoAway(duration_s(get(go_away, "timeLeft")) or 0.0))
        update = get(message, "sessionResumptionUpdate")
        if isinstance(update, dict) and get(update, "resumable") and get(update, "newHandle"):
            self.record.new_handle(str(get(update, "newHandle")))
        usage = get(message, "usageMetadata")
        if isinstance(usage, dict):
            self.responses.usage = usage

    def _on_content(self, content: dict[str, Any], out: list[Output]) -> None:
        transcription = get(content, "inputTranscription")
        if isinstance(transcription, dict) and isinstance(get(transcription, "text"), str):
            out.append(self._callers.transcribed(get(transcription, "text")))
        if get(content, "interrupted"):
            out.append(self._callers.barged_in())
            if self.responses.current is not None:
                self.responses.end_response(
                    self.responses.current, "cancelled", "turn_detected", out
                )
        model_turn = get(content, "modelTurn")
        if isinstance(model_turn, dict):
            for part in get(model_turn, "parts") or []:
                if isinstance(part, dict):
                    self._on_part(part, out)
        output = get(content, "outputTranscription")
        text = get(output, "text") if isinstance(output, dict) else None
        if isinstance(text, str) and text:
            self._add_text(text, out)
        current = self.responses.current
        if (get(content, "generationComplete") or get(content, "turnComplete")) and current:
            self.responses.end_response(current, "completed", None, out)

    def _on_part(self, part: dict[str, Any], out: list[Output]) -> None:
        blob = get(part, "inlineData")
        if isinstance(blob, dict):
            data = get(blob, "data")
            if isinstance(data, str) and len(data) > self.limits.max_delta_bytes:
                self._warn.warn(
                    "delta_bound",
                    "an audio part over %d bytes was dropped",
                    self.limits.max_delta_bytes,
                )  # checked before decoding it
                return
            samples = decode_audio(data)
            turn, account = self._message(out)
            ms = len(samples) * _MS_PER_SAMPLE
            if not admit_item_audio(self.limits, self._warn, account, ms):
                return
            if turn.record is not None:
                turn.record.audio_ms = account.received_ms
            self.responses.emit(turn, AudioDelta(account.item_id, samples, ms), out)
            return
        text = get(part, "text")
        if isinstance(text, str) and text and not get(part, "thought"):
            self._add_text(text, out)

    def _add_text(self, text: str, out: list[Output]) -> None:
        turn, account = self._message(out)
        text = self._text_bounds.admit(account.item_id, account.text_chars, text)
        if not text:
            return
        account.add_text(text)
        if turn.record is not None:
            turn.record.text = account.text.strip()
        self.responses.emit(turn, TextDelta(account.item_id, text), out)

    def _on_tool_call(self, tool_call: dict[str, Any], out: list[Output]) -> None:
        calls = [c for c in get(tool_call, "functionCalls") or [] if isinstance(c, dict)]
        if self.responses.current is None and not any(map(self._new_call, calls)):
            # A turn that would carry no item (no call, or only ids already taken) still
            # settles a response of the call: it counts one item, so a flood of them ends
            # the call at the item bound (#14) instead of leaving records forever.
            self.item_bound.take()
        turn = self._turn(out)
        self.responses.end_message(turn, "completed", out)
        for call in calls:
            call_id = str(call.get("id") or self.new_id("call"))
            if call_id in self.call_names:
                continue  # exactly once per call id
            self.item_bound.take()
            name = str(call.get("name") or "")
            self.call_names[call_id] = name
            self._open_calls.add(call_id)
            item_id = f"fc_{call_id}"
            arguments = json.dumps(call.get("args") or {}, separators=(",", ":"))
            self.record.append(ServerTurn("function_call", item_id, arguments, call_id=call_id))
            ready = ToolCall(item_id, call_id, name, arguments, turn.response_id)
            self.responses.add_call(turn, ready, out)
        self.responses.end_response(turn, "completed", "tool_call", out)

    def _new_call(self, call: dict[str, Any]) -> bool:
        """Whether `call` becomes an item (a call without an id gets a fresh one)."""
        call_id = call.get("id")
        return not call_id or str(call_id) not in self.call_names

    # -- responses -------------------------------------------------------------------------

    def _turn(self, out: list[Output]) -> ModelTurn:
        """The running model turn; its first content starts one (and answers the caller)."""
        turn = self.responses.current
        if turn is None:
            self._callers.answered(out)
            turn = self.responses.start(out)
            self.generation_input_ms = self.input.end_ms
        return turn

    def _message(self, out: list[Output]) -> tuple[ModelTurn, ItemAccount]:
        turn = self._turn(out)
        return turn, self.responses.message(turn, out)
