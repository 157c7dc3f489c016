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
"""

from __future__ import annotations

import itertools
import json
import logging
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from vocalis.providers.base import (
    GenerationDone,
    GenerationStatus,
    InputAudioCommitted,
    InputSpeechStarted,
    InputSpeechStopped,
    InputTranscription,
    ItemAccount,
    MessageStatus,
    Modality,
    ProviderEvent,
    ProviderLimits,
    ToolCall,
)
from vocalis.providers.core_events import (
    AudioDelta,
    AudioEnded,
    CoreEvent,
    ItemAnnounced,
    MessageEnded,
    MessageStarted,
    ResponseEnded,
    ResponseStarted,
    TextDelta,
    TextEnded,
    ToolCallReady,
)
from vocalis.providers.gemini.heard import ServerTurn, TurnKind
from vocalis.providers.gemini.input_audio import RecentInput
from vocalis.providers.gemini.record import ServerRecord
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


@dataclass(slots=True)
class _CallerTurn:
    item_id: str
    transcript: str = ""
    committed: bool = False
    # The model started answering it: later transcription belongs to a new turn.
    answered: bool = False


@dataclass(slots=True)
class _Turn:
    """The model turn being received (one response)."""

    response_id: str
    request_id: str | None
    held: bool
    message: ItemAccount | None = None
    item_ids: list[str] = field(default_factory=list)
    record: ServerTurn | None = None
    # Ended for the runtime (cancelled locally) while the service still generates it: later
    # content only grows the server record.
    ended: bool = False
    # Events of a held-back response, released by `claim_held` / `release_held`.
    buffer: list[CoreEvent] = field(default_factory=list)


class GeminiProtocol:
    """One session's protocol state, across connections (ids never repeat)."""

    def __init__(
        self,
        *,
        modality: Modality = "audio",
        limits: ProviderLimits | None = None,
        warn_limiter: WarnLimiter | None = None,
    ) -> None:
        self._modality: tuple[Modality, ...] = (modality,)
        # Bounds on what the peer may make one call hold (dropped past them, logged once).
        self.limits = limits or ProviderLimits()
        self._warn = warn_limiter or WarnLimiter(logger)
        self._text_bounds = TextBounds(self.limits, self._warn)
        # Model, caller and function-call items: counted per call (`providers/item_bound.py`).
        self.item_bound = ItemBound(self.limits)
        self._ids = itertools.count(1)
        self._turn: _Turn | None = None
        self._held: _Turn | None = None
        self._caller: _CallerTurn | None = None
        self._expected_requests: list[str] = []
        self.call_names: dict[str, str] = {}
        self.cancelled_calls: set[str] = set()
        # Calls of the last toolCall still waiting for a response; once all are answered (or
        # the client ended a manual turn) the service's own next response is held back.
        self._open_calls: set[str] = set()
        self._hold_next = False
        self.record = ServerRecord()
        # The latest usage report (a response's end carries it).
        self.usage: dict[str, Any] | None = None
        # The caller audio of this provider session's input timeline (16 kHz, ms from the
        # last reconnect): its one owner. The shell appends to it and replays from it; the
        # core reads the position for its speech events.
        self.input = RecentInput()
        # Where the input timeline was when the last response started (a barge-in that
        # follows is after it: a re-seeded session replays the caller's audio from here).
        self.generation_input_ms = 0.0

    # -- state queries ---------------------------------------------------------------------

    @property
    def server_record(self) -> list[ServerTurn]:
        """What the service holds, turn by turn (`record.py`)."""
        return self.record.turns

    @property
    def generating(self) -> bool:
        """A response is streaming to the runtime (not held back, not cancelled locally)."""
        turn = self._turn
        return turn is not None and not turn.ended and not turn.held

    @property
    def unsettled_items(self) -> frozenset[str]:
        """Model items of a response still streaming, or held back (even complete): unplayed."""
        live = self._turn if self._turn is not None and not self._turn.ended else None
        turns = (t for t in (live, self._held) if t is not None)
        return frozenset(item for turn in turns for item in turn.item_ids)

    @property
    def holding(self) -> bool:
        """A held-back response exists (claim it with :meth:`claim_held`)."""
        return self._held is not None

    @property
    def idle(self) -> bool:
        """No response running, held back, or expected from the service on its own."""
        return (
            self._turn is None
            and self._held is None
            and not self._hold_next
            and not self._open_calls
        )

    @property
    def self_start_expected(self) -> bool:
        """The service will answer on its own (tool responses complete, manual turn ended)."""
        return self._hold_next or self._held is not None

    def expect_generation(self, request_id: str) -> None:
        """The next response the service starts answers ``request_id`` (FIFO)."""
        self._expected_requests.append(request_id)

    def drop_expectation(self, request_id: str) -> None:
        if request_id in self._expected_requests:
            self._expected_requests.remove(request_id)

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):06d}"

    # -- the held-back response ------------------------------------------------------------

    def claim_held(self, request_id: str | None) -> list[CoreEvent]:
        """Release the held-back response as the answer to ``request_id`` (``None``: as the
        server's own); its buffered events, ``ResponseStarted`` first. Empty if none."""
        turn, self._held = self._held, None
        if turn is None:
            return []
        turn.held = False
        turn.request_id = request_id
        events: list[CoreEvent] = [ResponseStarted(turn.response_id, request_id)]
        events += turn.buffer
        turn.buffer = []
        return events

    # -- client-side facts the record needs ------------------------------------------------

    def caller_committed(self, transcript: str = "") -> InputAudioCommitted:
        """A caller turn the client ended itself (manual activity)."""
        turn = self._caller_turn()
        turn.transcript = transcript or turn.transcript
        self._hold_next = True
        return self._commit(turn)

    def tool_output_sent(self, call_id: str, output_item_id: str, output: str) -> None:
        self._open_calls.discard(call_id)
        record = ServerTurn("function_response", output_item_id, output, call_id=call_id)
        self.record.append(record)
        if not self._open_calls:
            self._hold_next = True

    def client_turn_sent(self, item_id: str, role: str, text: str) -> None:
        kind: TurnKind = "model" if role == "assistant" else "user"
        self.record.append(ServerTurn(kind, item_id, text))

    def cancel_local(self) -> list[Output]:
        """The runtime cancelled the running turn: its streams end now (Gemini has no cancel;
        the service goes on and its words land in the record, for the heard checkpoint)."""
        out: list[Output] = []
        turn = self._turn
        if turn is not None and not turn.ended:
            self._end_response(turn, "cancelled", "client_cancelled", out, keep=True)
        return out

    def connection_replaced(self) -> list[Output]:
        """A new connection replaced the old one (re-seed, planned resume): what the old one
        was still streaming ends ``disconnected``, its held-back answer is dropped and its
        unanswered calls count as cancelled (the new session never saw them)."""
        out: list[Output] = []
        if self._turn is not None:
            self._end_response(self._turn, "disconnected", "connection_replaced", out)
        self._held = None
        self.cancelled_calls.update(self._open_calls)
        self._open_calls.clear()
        self._hold_next = False
        self._expected_requests.clear()
        return out

    def connection_lost(self) -> list[Output]:
        """The socket is gone: every stream ends ``disconnected`` (nothing may hang)."""
        out: list[Output] = []
        self._caller = None
        if self._turn is not None:
            self._end_response(self._turn, "disconnected", "connection_lost", out)
        self._held = None  # never released: it died with the connection
        self._expected_requests.clear()
        self._open_calls.clear()
        self._hold_next = False
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
            self.usage = usage

    def _on_content(self, content: dict[str, Any], out: list[Output]) -> None:
        transcription = get(content, "inputTranscription")
        if isinstance(transcription, dict) and isinstance(get(transcription, "text"), str):
            # A committed turn (manual activity) keeps its transcript until it is answered.
            pending = self._caller
            caller = (
                pending if pending is not None and not pending.answered else self._caller_turn()
            )
            delta = get(transcription, "text")
            caller.transcript += self._text_bounds.admit(
                caller.item_id, len(caller.transcript), delta
            )
            out.append(InputTranscription(caller.item_id, caller.transcript.strip(), final=False))
        if get(content, "interrupted"):
            caller = self._caller_turn()
            out.append(InputSpeechStarted(caller.item_id, max(0.0, self.input.end_ms - 300.0)))
            if self._turn is not None:
                self._end_response(self._turn, "cancelled", "turn_detected", out)
        model_turn = get(content, "modelTurn")
        if isinstance(model_turn, dict):
            for part in get(model_turn, "parts") or []:
                if isinstance(part, dict):
                    self._on_part(part, out)
        output = get(content, "outputTranscription")
        text = get(output, "text") if isinstance(output, dict) else None
        if isinstance(text, str) and text:
            self._add_text(text, out)
        if (get(content, "generationComplete") or get(content, "turnComplete")) and self._turn:
            self._end_response(self._turn, "completed", None, out)

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
            self._emit(turn, AudioDelta(account.item_id, samples, ms), out)
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
        self._emit(turn, TextDelta(account.item_id, text), out)

    def _on_tool_call(self, tool_call: dict[str, Any], out: list[Output]) -> None:
        calls = [c for c in get(tool_call, "functionCalls") or [] if isinstance(c, dict)]
        turn = self._ensure_turn(out)
        self._end_message(turn, "completed", out)
        for call in calls:
            call_id = str(call.get("id") or self.new_id("call"))
            if call_id in self.call_names:
                continue  # exactly once per call id
            self.item_bound.take()
            name = str(call.get("name") or "")
            self.call_names[call_id] = name
            self._open_calls.add(call_id)
            item_id = f"fc_{call_id}"
            turn.item_ids.append(item_id)
            arguments = json.dumps(call.get("args") or {}, separators=(",", ":"))
            record = ServerTurn("function_call", item_id, arguments, call_id=call_id)
            self.record.append(record)
            self._emit(turn, ItemAnnounced(turn.response_id, item_id), out)
            ready = ToolCallReady(ToolCall(item_id, call_id, name, arguments, turn.response_id))
            self._emit(turn, ready, out)
        self._end_response(turn, "completed", "tool_call", out)

    # -- responses -------------------------------------------------------------------------

    def _caller_turn(self) -> _CallerTurn:
        if self._caller is None or self._caller.committed or self._caller.answered:
            self.item_bound.take()
            self._caller = _CallerTurn(self.new_id("user"))
        return self._caller

    def _commit(self, caller: _CallerTurn) -> InputAudioCommitted:
        caller.committed = True
        previous = self.record.last_item_id()
        self.record.append(ServerTurn("user", caller.item_id, caller.transcript.strip()))
        return InputAudioCommitted(caller.item_id, previous)

    def _emit(self, turn: _Turn, event: CoreEvent, out: list[Output]) -> None:
        """A response's event: to the runtime, buffered while held back, dropped once ended."""
        if turn.ended:
            return
        if turn.held:
            turn.buffer.append(event)
        else:
            out.append(event)

    def _ensure_turn(self, out: list[Output]) -> _Turn:
        if self._turn is not None:
            return self._turn
        caller = self._caller
        if caller is not None and not caller.committed:
            out.append(InputSpeechStopped(caller.item_id, self.input.end_ms))
            out.append(self._commit(caller))
        if caller is not None and not caller.answered:
            caller.answered = True
            if caller.transcript:
                text = caller.transcript.strip()
                out.append(InputTranscription(caller.item_id, text, True))
                self.record.set_text(caller.item_id, text)
        request_id = self._expected_requests.pop(0) if self._expected_requests else None
        held = request_id is None and self._hold_next
        self._hold_next = False
        turn = _Turn(self.new_id("resp"), request_id, held)
        self._turn = turn
        if held:
            self._held = turn
        else:
            out.append(ResponseStarted(turn.response_id, request_id))
        self.generation_input_ms = self.input.end_ms
        return turn

    def _message(self, out: list[Output]) -> tuple[_Turn, ItemAccount]:
        turn = self._ensure_turn(out)
        if turn.message is None:
            self.item_bound.take()
            item_id = self.new_id("model")
            turn.message = ItemAccount(item_id)
            started = MessageStarted(
                turn.response_id, item_id, len(turn.item_ids), self._modality, None, turn.message
            )
            turn.item_ids.append(item_id)
            turn.record = ServerTurn("model", item_id, "")
            self.record.append(turn.record)
            self._emit(turn, started, out)
        return turn, turn.message

    def _end_message(self, turn: _Turn, status: MessageStatus, out: list[Output]) -> None:
        account, turn.message = turn.message, None
        if account is None or account.status is not None:
            return
        account.status = status
        item_id = account.item_id
        self._emit(turn, AudioEnded(item_id, text_only="audio" not in self._modality), out)
        self._emit(turn, TextEnded(item_id), out)
        self._emit(turn, MessageEnded(item_id, status, account.received_ms, account.text), out)

    def _end_response(
        self,
        turn: _Turn,
        status: GenerationStatus,
        reason: str | None,
        out: list[Output],
        *,
        keep: bool = False,
    ) -> None:
        """End ``turn`` for the runtime; with ``keep`` it stays current (record only)."""
        if not keep:
            self._turn = None
        if turn.ended:
            return
        if turn.held and status != "completed":
            # A held-back answer that was cut never reaches the runtime.
            self._held = None
            turn.ended = True
            return
        message_status: MessageStatus = "disconnected"
        if status == "completed" or status == "cancelled":
            message_status = status
        if turn.message is not None:
            self._end_message(turn, message_status, out)
        done = GenerationDone(
            turn.response_id, status, reason, None, tuple(turn.item_ids), self.usage
        )
        self._emit(turn, ResponseEnded(done), out)
        turn.ended = True
