"""The Gemini Live protocol as a state machine with no I/O (in the style of h11).

Server message dicts go in (:meth:`GeminiProtocol.receive`); out come provider-neutral
`ProviderEvent`s, updates to the live `Generation` channels, and a few connection signals for
the shell (:class:`SetupDone`, :class:`GoAway`). Gemini's model differs from OpenAI's in ways
this core absorbs so the runtime does not see them:

* there are no response or item ids: one model turn is one `Generation` holding one
  `MessageGeneration`; both get ids minted here, unique per session;
* a ``toolCall`` ends the generation (the model waits for every response; its continuation
  after the ``toolResponse`` is a new generation, answering the runtime's follow-up request);
* ``generationComplete`` ends the generation; ``turnComplete`` after it only means the model
  assumed playback ended; ``interrupted`` (the caller barged in) ends it ``cancelled`` and is
  reported as caller speech, the only speech signal Gemini sends;
* caller turns have no ids either: a user item id is minted when a turn shows up (its
  transcription, the barge-in, or the model answering it) and finalised when the model answers.

It also keeps the **server-side record**: what the service holds in its history, turn by turn
(model turns as *sent* — the transcript of every audio chunk received), the input for the
heard-contract strategy in :mod:`~vocalis.providers.gemini.heard`.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import numpy as np

from vocalis.audio.codec import b64decode_bytes
from vocalis.providers.base import (
    Generation,
    GenerationDone,
    GenerationStarted,
    GenerationStatus,
    InputAudioCommitted,
    InputSpeechStarted,
    InputSpeechStopped,
    InputTranscription,
    MessageGeneration,
    MessageStatus,
    Modality,
    ProviderEvent,
    ToolCall,
)
from vocalis.providers.gemini.heard import ServerTurn, TurnKind
from vocalis.providers.gemini.wire import OUTPUT_RATE, duration_s, get

_MS_PER_BYTE = 1000.0 / (OUTPUT_RATE * 2)
_URLSAFE = str.maketrans("-_", "+/")


@dataclass(frozen=True, slots=True)
class SetupDone:
    """``setupComplete``: the connection is ready."""


@dataclass(frozen=True, slots=True)
class GoAway:
    """The service will end this connection in ``seconds_left``."""

    seconds_left: float


Output: TypeAlias = ProviderEvent | SetupDone | GoAway


@dataclass(slots=True)
class _CallerTurn:
    item_id: str
    transcript: str = ""
    committed: bool = False


@dataclass(slots=True)
class _Active:
    generation: Generation
    message: MessageGeneration | None = None
    item_ids: list[str] = field(default_factory=list)
    # Streams ended (cancelled locally) while the service still generates this turn: later
    # content only grows the server record.
    closed: bool = False
    record: ServerTurn | None = None


def _decode_audio(data: object) -> np.ndarray:
    if not isinstance(data, str):
        raise ValueError("inlineData.data is not base64 text")
    text = data.translate(_URLSAFE)
    raw = b64decode_bytes(text + "=" * (-len(text) % 4))
    usable = len(raw) - len(raw) % 2
    return np.frombuffer(raw[:usable], dtype="<i2").astype(np.int16, copy=False)


class GeminiProtocol:
    """One session's protocol state, across connections (ids never repeat)."""

    def __init__(self, *, modality: Modality = "audio") -> None:
        self._modality: tuple[Modality, ...] = (modality,)
        self._ids = itertools.count(1)
        self._active: _Active | None = None
        self._caller: _CallerTurn | None = None
        self._expected_requests: list[str] = []
        self.call_names: dict[str, str] = {}
        self.cancelled_calls: set[str] = set()
        self.answered_calls: set[str] = set()
        # Calls of the last toolCall still waiting for a response. Once all are answered (or the
        # client ended a manual turn), the service answers by itself: that generation is held
        # back (`deferred`) until the runtime asks for its follow-up reply, so it never starts
        # while the previous audio still plays.
        self._open_calls: set[str] = set()
        self._defer_next = False
        self.deferred: Generation | None = None
        self.resume_handle: str | None = None
        self.server_record: list[ServerTurn] = []
        self._handle_records: dict[str, int] = {}
        self.usage: list[dict[str, Any]] = []
        self.input_ms = 0.0  # caller audio appended since the last reconnect (16 kHz timeline)
        # Where the input timeline was when the last generation started (a barge-in that
        # follows is after it: a re-seeded session replays the caller's audio from here).
        self.generation_input_ms = 0.0

    # -- state queries ---------------------------------------------------------------------

    @property
    def generating(self) -> bool:
        return self._active is not None and not self._active.closed

    @property
    def idle(self) -> bool:
        """No generation running, held back, or expected from the service on its own."""
        return (
            self._active is None
            and self.deferred is None
            and not self._defer_next
            and not self._open_calls
        )

    @property
    def self_start_expected(self) -> bool:
        """The service will answer on its own (tool responses complete, manual turn ended)."""
        return self._defer_next or self.deferred is not None

    def claim_deferred(self, request_id: str) -> Generation | None:
        """The held-back generation, now answering ``request_id`` (``None`` if none yet)."""
        generation, self.deferred = self.deferred, None
        if generation is not None:
            generation.request_id = request_id
        return generation

    def release_deferred(self) -> GenerationStarted | None:
        """Nobody asked for the held-back generation: hand it to the runtime as the server's."""
        generation, self.deferred = self.deferred, None
        return GenerationStarted(generation) if generation is not None else None

    def expect_generation(self, request_id: str) -> None:
        """The next generation the service starts answers ``request_id`` (FIFO)."""
        self._expected_requests.append(request_id)

    def drop_expectation(self, request_id: str) -> None:
        if request_id in self._expected_requests:
            self._expected_requests.remove(request_id)

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):06d}"

    # -- client-side facts the record needs ------------------------------------------------

    def caller_committed(self, transcript: str = "") -> InputAudioCommitted:
        """A caller turn the client ended itself (manual activity)."""
        turn = self._caller_turn()
        turn.transcript = transcript or turn.transcript
        self._defer_next = True
        return self._commit(turn)

    def tool_output_sent(self, call_id: str, output_item_id: str, output: str) -> None:
        self.answered_calls.add(call_id)
        self._open_calls.discard(call_id)
        self.server_record.append(
            ServerTurn("function_response", output_item_id, output, call_id=call_id)
        )
        if not self._open_calls:
            self._defer_next = True

    def client_turn_sent(self, item_id: str, role: str, text: str) -> None:
        kind: TurnKind = "model" if role == "assistant" else "user"
        self.server_record.append(ServerTurn(kind, item_id, text))

    def cancel_local(self) -> None:
        """The runtime cancelled the running turn: its streams end now (Gemini has no cancel;
        the service goes on and its words land in the record, for the heard checkpoint)."""
        self._end_generation("cancelled", "client_cancelled", keep=True)

    def accept_heard(self, heard: dict[str, str]) -> None:
        """A correction note told the model what was heard: stop reporting these turns."""
        for turn in self.server_record:
            if turn.item_id in heard:
                turn.text = heard[turn.item_id]

    def reseeded(self, record: list[ServerTurn]) -> None:
        """A fresh connection was seeded: the server holds exactly ``record``."""
        self.server_record = list(record)
        self.resume_handle = None
        self._handle_records.clear()

    def resumed(self, handle: str) -> None:
        """A connection resumed ``handle``: the server holds the record as of that handle."""
        length = self._handle_records.get(handle)
        if length is not None:
            del self.server_record[length:]

    # -- connection end --------------------------------------------------------------------

    def connection_lost(self) -> list[Output]:
        """The socket is gone: every stream ends ``disconnected`` (nothing may hang)."""
        out: list[Output] = []
        self._caller = None
        if self._active is not None:
            self._end_generation("disconnected", "connection_lost")
        if self.deferred is not None:
            generation, self.deferred = self.deferred, None
            self._active = _Active(generation)
            self._end_generation("disconnected", "connection_lost")
        self._expected_requests.clear()
        self._open_calls.clear()
        self._defer_next = False
        self.input_ms = 0.0
        return out

    # -- server messages -------------------------------------------------------------------

    def receive(self, message: dict[str, Any]) -> list[Output]:
        out: list[Output] = []
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
            ids = [i for i in get(cancellation, "ids") or [] if isinstance(i, str)]
            self.cancelled_calls.update(ids)
            self._open_calls.difference_update(ids)
        go_away = get(message, "goAway")
        if isinstance(go_away, dict):
            out.append(GoAway(duration_s(get(go_away, "timeLeft")) or 0.0))
        update = get(message, "sessionResumptionUpdate")
        if isinstance(update, dict) and get(update, "resumable") and get(update, "newHandle"):
            self.resume_handle = str(get(update, "newHandle"))
            self._handle_records[self.resume_handle] = len(self.server_record)
        usage = get(message, "usageMetadata")
        if isinstance(usage, dict):
            self.usage.append(usage)
        return out

    def _on_content(self, content: dict[str, Any], out: list[Output]) -> None:
        transcription = get(content, "inputTranscription")
        if isinstance(transcription, dict) and isinstance(get(transcription, "text"), str):
            turn = self._caller_turn()
            turn.transcript += get(transcription, "text")
            out.append(InputTranscription(turn.item_id, turn.transcript.strip(), final=False))
        if get(content, "interrupted"):
            turn = self._caller_turn()
            out.append(InputSpeechStarted(turn.item_id, max(0.0, self.input_ms - 300.0)))
            if self._active is not None:
                self._end_generation("cancelled", "turn_detected")
        model_turn = get(content, "modelTurn")
        if isinstance(model_turn, dict):
            for part in get(model_turn, "parts") or []:
                if isinstance(part, dict):
                    self._on_part(part, out)
        output = get(content, "outputTranscription")
        if (
            isinstance(output, dict)
            and isinstance(get(output, "text"), str)
            and get(output, "text")
        ):
            self._grow_text(self._message(out), get(output, "text"))
        if get(content, "generationComplete") or get(content, "turnComplete"):
            self._end_generation("completed", None)

    def _on_part(self, part: dict[str, Any], out: list[Output]) -> None:
        blob = get(part, "inlineData")
        if isinstance(blob, dict):
            samples = _decode_audio(get(blob, "data"))
            message = self._message(out)
            message.audio.send(samples)
            message.account.received_ms += len(samples) * 2 * _MS_PER_BYTE
            if self._active is not None and self._active.record is not None:
                self._active.record.audio_ms = message.account.received_ms
            return
        text = get(part, "text")
        if isinstance(text, str) and text and not get(part, "thought"):
            self._grow_text(self._message(out), text)

    def _grow_text(self, message: MessageGeneration, text: str) -> None:
        message.text.send(text)
        message.account.add_text(text)
        if self._active is not None and self._active.record is not None:
            self._active.record.text = message.account.text.strip()

    def _on_tool_call(self, tool_call: dict[str, Any], out: list[Output]) -> None:
        calls = [c for c in get(tool_call, "functionCalls") or [] if isinstance(c, dict)]
        active = self._ensure_generation(out)
        if active.message is not None and not active.closed:
            self._end_message(active, "completed")
        for call in calls:
            call_id = str(call.get("id") or self.new_id("call"))
            if call_id in self.call_names:
                continue  # exactly once per call id
            name = str(call.get("name") or "")
            self.call_names[call_id] = name
            self._open_calls.add(call_id)
            item_id = f"fc_{call_id}"
            active.item_ids.append(item_id)
            active.generation.announced_item_ids.append(item_id)
            arguments = _json(call.get("args") or {})
            self.server_record.append(
                ServerTurn("function_call", item_id, arguments, call_id=call_id)
            )
            active.generation.tool_calls.send(
                ToolCall(item_id, call_id, name, arguments, active.generation.response_id)
            )
        self._end_generation("completed", "tool_call")

    # -- generations -----------------------------------------------------------------------

    def _caller_turn(self) -> _CallerTurn:
        if self._caller is None or self._caller.committed:
            self._caller = _CallerTurn(self.new_id("user"))
        return self._caller

    def _commit(self, turn: _CallerTurn) -> InputAudioCommitted:
        turn.committed = True
        previous = self.server_record[-1].item_id if self.server_record else None
        self.server_record.append(ServerTurn("user", turn.item_id, turn.transcript.strip()))
        return InputAudioCommitted(turn.item_id, previous)

    def _ensure_generation(self, out: list[Output]) -> _Active:
        if self._active is not None:
            return self._active
        turn = self._caller
        if turn is not None and not turn.committed:
            out.append(InputSpeechStopped(turn.item_id, self.input_ms))
            out.append(self._commit(turn))
            if turn.transcript:
                out.append(InputTranscription(turn.item_id, turn.transcript.strip(), final=True))
        request_id = self._expected_requests.pop(0) if self._expected_requests else None
        generation = Generation(self.new_id("resp"), request_id=request_id)
        self._active = _Active(generation)
        if request_id is None and self._defer_next:
            self.deferred = generation
        else:
            out.append(GenerationStarted(generation))
        self._defer_next = False
        self.generation_input_ms = self.input_ms
        return self._active

    def _message(self, out: list[Output]) -> MessageGeneration:
        active = self._ensure_generation(out)
        if active.message is None:
            item_id = self.new_id("model")
            message = MessageGeneration(
                item_id=item_id,
                response_id=active.generation.response_id,
                output_index=len(active.item_ids),
                modalities=self._modality,
            )
            active.message = message
            active.item_ids.append(item_id)
            active.generation.announced_item_ids.append(item_id)
            active.record = ServerTurn("model", item_id, "")
            self.server_record.append(active.record)
            active.generation.messages.send(message)
        return active.message

    def _end_message(self, active: _Active, status: MessageStatus) -> None:
        message = active.message
        if message is None:
            return
        message.account.status = status
        message.audio.close()
        message.text.close()
        active.message = None

    def _end_generation(
        self, status: GenerationStatus, reason: str | None, *, keep: bool = False
    ) -> None:
        active = self._active
        if active is None:
            return
        if not keep:
            self._active = None
        if active.closed:
            return
        active.closed = True
        if status != "completed" and self.deferred is active.generation:
            self.deferred = None  # a held-back answer that was cut never reaches the runtime
        message_status: MessageStatus = (
            "completed"
            if status == "completed"
            else "cancelled"
            if status == "cancelled"
            else "disconnected"
        )
        self._end_message(active, message_status)
        generation = active.generation
        generation.messages.close()
        generation.tool_calls.close()
        generation.tool_call_deltas.close()
        if not generation.done.done():
            usage = self.usage[-1] if self.usage else None
            generation.done.set_result(
                GenerationDone(
                    generation.response_id, status, reason, None, tuple(active.item_ids), usage
                )
            )


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))
