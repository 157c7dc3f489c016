"""The OpenAI Realtime GA protocol as a state machine with no I/O (in the style of h11).

Server event dicts go in (`receive`), and out come:

* provider-neutral `ProviderEvent`s for the runtime,
* updates to the live `Generation` / `MessageGeneration` channels (audio, text, tool calls),
* `OpCompleted`/`OpFailed` results that complete client operations (correlated by our
  `event_id`, the response `metadata`, the item id, or — where the server sends
  `event_id: null` — the error code),
* `Send`s: client events the protocol itself must emit (cancelling a response that was
  abandoned before the server created it).

Client operations are built here too (`session_update`, `response_create`, `truncate`, ...), so
the WebSocket shell in `realtime.py` only moves strings and resolves futures. Everything that
makes the heard contract hold lives here and is unit-tested with plain event sequences:

* audio/text are routed by `item_id`, never by "the current item", so several messages per
  response (gpt-realtime-2 preambles) stay separate even when item A's `.done` events arrive
  after item B's audio started;
* every channel is closed on item end, response end, or `connection_lost`, and
  `Generation.done` resolves exactly once;
* a `ToolCall` is emitted exactly once per `call_id`;
* malformed or unknown events produce one rate-limited warning (without payload), never a crash.
"""

from __future__ import annotations

import itertools
import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeAlias, TypeVar

from vocalis.providers.base import (
    ErrorKind,
    Generation,
    GenerationDone,
    GenerationStarted,
    InputAudioCommitted,
    InputSpeechStarted,
    InputSpeechStopped,
    InputTranscription,
    MessageGeneration,
    Modality,
    OpCompleted,
    OpFailed,
    ProviderError,
    ProviderEvent,
    ToolCall,
    ToolCallDelta,
)
from vocalis.providers.openai.errors import error_kind, local_error
from vocalis.providers.openai.formats import AudioFormat
from vocalis.providers.openai.mirror import ConversationMirror
from vocalis.utils.clock import Clock, MonotonicClock
from vocalis.utils.logsafe import WarnLimiter

logger = logging.getLogger(__name__)

# "Audio content of 2450ms is already shorter than 2535ms" (truncate past the server's length).
_ALREADY_SHORTER = re.compile(r"audio content of (\d+)\s*ms is already shorter than (\d+)\s*ms")

# Beta-era / clone names of GA events (xAI and Azure's legacy surface still send some).
_EVENT_ALIASES = {
    "response.audio.delta": "response.output_audio.delta",
    "response.audio.done": "response.output_audio.done",
    "response.audio_transcript.delta": "response.output_audio_transcript.delta",
    "response.audio_transcript.done": "response.output_audio_transcript.done",
    "response.text.delta": "response.output_text.delta",
    "response.text.done": "response.output_text.done",
    "conversation.item.created": "conversation.item.added",
}

# Known events that carry nothing the runtime needs.
_IGNORED_EVENTS = frozenset(
    {
        "conversation.created",
        "conversation.item.retrieved",
        "conversation.item.input_audio_transcription.segment",
        "rate_limits.updated",
        "response.content_part.done",
        "input_audio_buffer.timeout_triggered",
        "input_audio_buffer.dtmf_event_received",
        "output_audio_buffer.started",
        "output_audio_buffer.stopped",
        "output_audio_buffer.cleared",
        "response.mcp_call_arguments.delta",
        "response.mcp_call_arguments.done",
        "response.mcp_call.in_progress",
        "response.mcp_call.completed",
        "response.mcp_call.failed",
        "mcp_list_tools.in_progress",
        "mcp_list_tools.completed",
        "mcp_list_tools.failed",
        "ping",
    }
)

_TEXT_PART_TYPES = frozenset({"text", "output_text"})

T_co = TypeVar("T_co", covariant=True)

OpKind: TypeAlias = Literal[
    "session.update", "response.create", "truncate", "delete", "create", "commit", "clear"
]


# --------------------------------------------------------------------------- outputs


@dataclass(frozen=True, slots=True)
class Send:
    """A client event the protocol needs sent (e.g. cancel an abandoned response)."""

    event: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SessionCreated:
    session: dict[str, Any]


Output: TypeAlias = ProviderEvent | OpCompleted[object] | OpFailed | Send | SessionCreated


@dataclass(frozen=True, slots=True)
class ClientOp(Generic[T_co]):
    """A client event to send plus the id under which its result will arrive.

    `T_co` is the type its `OpCompleted.value` has (an item id, a session object, ...).
    """

    op_id: str
    kind: OpKind
    event: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Skip:
    """An operation that must not go on the wire, and why (logged by the caller at DEBUG)."""

    reason: str


# --------------------------------------------------------------------------- internal state


@dataclass(slots=True)
class _Pending:
    op_id: str
    kind: OpKind
    item_id: str | None = None
    # create: the caller's id for the item and the wire item type (for the FIFO fallback).
    local_id: str | None = None
    item_type: str | None = None
    role: str | None = None
    # truncate: already retried at the server's own audio length (at most once).
    retried: bool = False


@dataclass(slots=True)
class _Call:
    item_id: str
    call_id: str
    name: str
    parts: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Response:
    generation: Generation
    audio_out: bool
    messages: dict[str, MessageGeneration] = field(default_factory=dict)
    calls: dict[str, _Call] = field(default_factory=dict)


def _message_status(response_status: str) -> str:
    if response_status in ("completed", "cancelled", "disconnected"):
        return response_status
    return "incomplete"


def _truncate_event(op_id: str, item_id: str, audio_end_ms: int) -> dict[str, Any]:
    """The one shape of a truncate on the wire (first cut and the retry at the server's length)."""
    return {
        "type": "conversation.item.truncate",
        "event_id": op_id,
        "item_id": item_id,
        "content_index": 0,
        "audio_end_ms": audio_end_ms,
    }


def _delete_event(op_id: str, item_id: str) -> dict[str, Any]:
    """The one shape of a delete on the wire (a delete, a sub-1 ms truncate, or its retry)."""
    return {"type": "conversation.item.delete", "event_id": op_id, "item_id": item_id}


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) <= 120 else text[:117] + "..."


class OpenAIProtocol:
    """One realtime session's protocol state (survives reconnects; see `connection_opened`)."""

    def __init__(
        self,
        *,
        audio_format: AudioFormat,
        clock: Clock | None = None,
        server_vad: bool = True,
        output_audio: bool = True,
        warn_limiter: WarnLimiter | None = None,
    ) -> None:
        self.audio_format = audio_format
        self.clock: Clock = clock or MonotonicClock()
        # With server VAD the server commits itself; our manual commit then hits an empty
        # buffer, which is benign.
        self.server_vad = server_vad
        # Session default output modality (a response may override it).
        self.output_audio = output_audio
        self.mirror = ConversationMirror()
        # Caller (runtime) item id -> provider item id, kept across reconnects.
        self.aliases: dict[str, str] = {}
        self.session: dict[str, Any] | None = None
        self._warn = warn_limiter or WarnLimiter(logger)
        self._ids = itertools.count(1)
        self._pending: dict[str, _Pending] = {}
        self._responses: dict[str, _Response] = {}
        self._item_response: dict[str, _Response] = {}
        self._emitted_calls: set[str] = set()
        self._cancel_on_create: set[str] = set()
        self._committed: set[str] = set()
        self._input_transcripts: dict[str, str] = {}
        self._handlers: dict[str, Callable[[dict[str, Any], list[Output]], None]] = {
            "error": self._on_error,
            "session.created": self._on_session_created,
            "session.updated": self._on_session_updated,
            "input_audio_buffer.speech_started": self._on_speech_started,
            "input_audio_buffer.speech_stopped": self._on_speech_stopped,
            "input_audio_buffer.committed": self._on_committed,
            "input_audio_buffer.cleared": self._on_cleared,
            "conversation.item.added": self._on_item_added,
            "conversation.item.done": self._on_item_done,
            "conversation.item.truncated": self._on_item_truncated,
            "conversation.item.deleted": self._on_item_deleted,
            "conversation.item.input_audio_transcription.delta": self._on_transcription_delta,
            "conversation.item.input_audio_transcription.updated": self._on_transcription_updated,
            "conversation.item.input_audio_transcription.completed": (
                self._on_transcription_completed
            ),
            "conversation.item.input_audio_transcription.failed": self._on_transcription_failed,
            "response.created": self._on_response_created,
            "response.output_item.added": self._on_output_item_added,
            "response.output_item.done": self._on_output_item_done,
            "response.content_part.added": self._on_content_part_added,
            "response.output_audio.delta": self._on_audio_delta,
            "response.output_audio.done": self._on_audio_done,
            "response.output_audio_transcript.delta": self._on_text_delta,
            "response.output_audio_transcript.done": self._on_transcript_done,
            "response.output_text.delta": self._on_text_delta,
            "response.output_text.done": self._on_text_done,
            "response.function_call_arguments.delta": self._on_arguments_delta,
            "response.function_call_arguments.done": self._on_arguments_done,
            "response.done": self._on_response_done,
        }

    # ================================================================= state queries

    @property
    def active_generations(self) -> list[Generation]:
        return [r.generation for r in self._responses.values()]

    @property
    def pending_response_creates(self) -> int:
        return sum(1 for p in self._pending.values() if p.kind == "response.create")

    @property
    def idle(self) -> bool:
        """No response running and none requested (safe point for a proactive reconnect)."""
        return not self._responses and self.pending_response_creates == 0

    def resolve_id(self, item_id: str) -> str:
        """The provider id for a caller's item id (identity when never remapped)."""
        return self.aliases.get(item_id, item_id)

    def pending_op_ids(self) -> list[str]:
        return list(self._pending)

    # ================================================================= client operations

    def _register(self, kind: OpKind, **fields: Any) -> str:
        op_id = f"vc_{kind.replace('.', '_')}_{next(self._ids)}"
        self._pending[op_id] = _Pending(op_id, kind, **fields)
        return op_id

    def session_update(self, session: dict[str, Any]) -> ClientOp[dict[str, Any]]:
        op_id = self._register("session.update")
        return ClientOp(
            op_id,
            "session.update",
            {"type": "session.update", "event_id": op_id, "session": session},
        )

    def response_create(self, response: dict[str, Any] | None = None) -> ClientOp[Generation]:
        """`response.create` tagged with `metadata.client_event_id` for correlation.

        The op completes with the `Generation` when the matching `response.created` arrives.
        """
        op_id = self._register("response.create")
        body = dict(response or {})
        metadata = dict(body.get("metadata") or {})
        metadata["client_event_id"] = op_id
        body["metadata"] = metadata
        return ClientOp(
            op_id,
            "response.create",
            {"type": "response.create", "event_id": op_id, "response": body},
        )

    def discard_request(self, op_id: str) -> None:
        """Give up on a `response.create` (timeout): cancel its response if it shows up late."""
        pending = self._pending.pop(op_id, None)
        if pending is not None and pending.kind == "response.create":
            self._cancel_on_create.add(op_id)

    def forget(self, op_id: str) -> None:
        """Stop tracking an op (its caller gave up), so it cannot absorb a later reply."""
        self._pending.pop(op_id, None)

    def response_cancel(self, response_id: str | None = None) -> dict[str, Any]:
        """`response.cancel`; responses requested but not yet created are cancelled on arrival."""
        if response_id is None:
            for pending in self._pending.values():
                if pending.kind == "response.create":
                    self._cancel_on_create.add(pending.op_id)
        event: dict[str, Any] = {"type": "response.cancel", "event_id": self._new_event_id()}
        if response_id is not None:
            event["response_id"] = response_id
        return event

    def _new_event_id(self) -> str:
        return f"vc_evt_{next(self._ids)}"

    def truncate(self, item_id: str, audio_end_ms: float) -> ClientOp[int | None] | Skip:
        """Decide how to record that only `audio_end_ms` of an assistant item was heard.

        Clamped to the audio received for that item and rounded down to whole ms; nothing
        received, or a position under 1 ms, becomes a delete (the API rejects truncating at 0
        and an item with no audio). Text items we created (sync/replay) cannot be truncated;
        an item fully heard and finished needs nothing.
        """
        pid = self.resolve_id(item_id)
        entry = self.mirror.get(pid)
        received = self.mirror.audio_ms(pid)
        if entry is None and received <= 0:
            return Skip(f"item {pid} is not in the provider conversation")
        if entry is not None and entry.created_by_client:
            return Skip(f"item {pid} is a text item created by this client; use sync_history")
        if entry is not None and entry.type != "message":
            return Skip(f"item {pid} is a {entry.type}, not an audio message")
        if received <= 0:
            return self._delete_op(pid)
        ms = math.floor(min(float(audio_end_ms), received))
        if ms < 1:
            return self._delete_op(pid)
        still_generating = pid in self._item_response or (
            entry is not None and entry.status == "in_progress"
        )
        # Heard to the end of a *completed* item: nothing to do. An item cut short (cancelled,
        # incomplete) is truncated even at its full received length, because its transcript
        # may run ahead of its audio and truncation is what drops that text on the server.
        finished_whole = entry is None or entry.status == "completed"
        if ms >= math.floor(received) and not still_generating and finished_whole:
            return Skip(f"item {pid} was heard in full")
        # The cut is exact. The server may measure the item's audio more coarsely (P5/P6: it
        # answers "Audio content of X ms is already shorter than Y ms"); `_on_error` then
        # retries once at the server's own length X, which is all the caller can have heard.
        op_id = self._register("truncate", item_id=pid)
        return ClientOp(op_id, "truncate", _truncate_event(op_id, pid, ms))

    def delete(self, item_id: str) -> ClientOp[None] | Skip:
        pid = self.resolve_id(item_id)
        if pid not in self.mirror and self.mirror.audio_ms(pid) <= 0:
            return Skip(f"item {pid} is not in the provider conversation")
        return self._delete_op(pid)

    def _delete_op(self, pid: str) -> ClientOp[None]:
        op_id = self._register("delete", item_id=pid)
        return ClientOp(op_id, "delete", _delete_event(op_id, pid))

    def create(
        self, wire_item: dict[str, Any], *, local_id: str, previous_item_id: str | None
    ) -> ClientOp[str]:
        """`conversation.item.create`; completes with the provider id from `.added`.

        `previous_item_id`: a provider id to insert after, `"root"` for the start, or `None`
        to append.
        """
        op_id = self._register(
            "create",
            item_id=str(wire_item["id"]),
            local_id=local_id,
            item_type=str(wire_item.get("type")),
            role=wire_item.get("role"),
        )
        event: dict[str, Any] = {
            "type": "conversation.item.create",
            "event_id": op_id,
            "item": wire_item,
        }
        if previous_item_id is not None:
            event["previous_item_id"] = previous_item_id
        return ClientOp(op_id, "create", event)

    def commit(self) -> ClientOp[str]:
        op_id = self._register("commit")
        return ClientOp(op_id, "commit", {"type": "input_audio_buffer.commit", "event_id": op_id})

    def clear(self) -> ClientOp[None]:
        op_id = self._register("clear")
        return ClientOp(op_id, "clear", {"type": "input_audio_buffer.clear", "event_id": op_id})

    # ================================================================= connection lifecycle

    def connection_lost(self, reason: str) -> list[Output]:
        """The socket is gone: end every response as "disconnected", fail every pending op.

        The mirror is kept (a reconnect replays from it); `connection_opened` resets it.
        """
        out: list[Output] = []
        for response in list(self._responses.values()):
            self._finish(response, "disconnected", reason, None, (), None, out)
        self._responses.clear()
        self._item_response.clear()
        self._cancel_on_create.clear()
        for pending in list(self._pending.values()):
            out.append(
                OpFailed(
                    pending.op_id,
                    local_error(
                        ErrorKind.DISCONNECTED,
                        f"connection lost ({reason})",
                        operation=pending.kind,
                        item_id=pending.item_id,
                    ),
                )
            )
        self._pending.clear()
        return out

    def connection_opened(self) -> None:
        """A fresh provider session: empty conversation, new item ids."""
        self.mirror.reset()
        self._committed.clear()
        self._input_transcripts.clear()
        self.session = None

    # ================================================================= server events

    def receive(self, event: Any) -> list[Output]:
        """Feed one decoded server event; returns what it produced, in order."""
        out: list[Output] = []
        if not isinstance(event, dict):
            self._warn.warn(
                "malformed", "ignoring non-object server event (%s)", type(event).__name__
            )
            return out
        etype = event.get("type")
        if not isinstance(etype, str):
            self._warn.warn("malformed", "ignoring server event without a string 'type'")
            return out
        etype = _EVENT_ALIASES.get(etype, etype)
        handler = self._handlers.get(etype)
        if handler is None:
            if etype not in _IGNORED_EVENTS:
                # One budget for every unknown type: the server chooses the type string.
                self._warn.warn("unknown", "ignoring unknown server event type %r", etype[:80])
            return out
        try:
            handler(event, out)
        # OverflowError: an index of Infinity (Python's json accepts it) in int() — a malformed
        # event like any other, never an exception out of the receive loop (found by fuzzing).
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError) as exc:
            self._warn.warn(
                f"malformed:{etype}",
                "ignoring malformed %s event (%s: %s)",
                etype,
                type(exc).__name__,
                _short(exc),
            )
        return out

    # ----------------------------------------------------------------- session

    def _on_session_created(self, ev: dict[str, Any], out: list[Output]) -> None:
        session = ev.get("session")
        self.session = session if isinstance(session, dict) else {}
        out.append(SessionCreated(self.session))

    def _on_session_updated(self, ev: dict[str, Any], out: list[Output]) -> None:
        session = ev.get("session")
        if isinstance(session, dict):
            self.session = session
        pending = self._pop_oldest("session.update")
        if pending is not None:
            out.append(OpCompleted(pending.op_id, self.session))

    def _pop_oldest(self, kind: OpKind, item_id: str | None = None) -> _Pending | None:
        for op_id, pending in self._pending.items():
            if pending.kind == kind and (item_id is None or pending.item_id == item_id):
                del self._pending[op_id]
                return pending
        return None

    # ----------------------------------------------------------------- errors

    def _on_error(self, ev: dict[str, Any], out: list[Output]) -> None:
        err = ev.get("error")
        if not isinstance(err, dict):
            err = {}
        code = err.get("code")
        code = str(code) if code is not None else None
        message = str(err.get("message") or "")
        # Matched case-insensitively; the server's wording of these texts is not stable.
        lowered = message.lower()
        event_id = err.get("event_id")
        pending = self._pending.pop(event_id, None) if isinstance(event_id, str) else None
        if pending is None:
            pending = self._correlate(code, lowered)
        error_type = err.get("type")
        kind = error_kind(code, str(error_type) if error_type is not None else None)
        error = ProviderError(
            kind,
            message,
            code,
            operation=pending.kind if pending is not None else None,
            item_id=pending.item_id if pending is not None else None,
        )
        if pending is not None:
            retry = self._truncate_retry(pending, lowered)
            if retry is not None:
                # Reported (so apps see what the server said), then recovered: the op stays
                # pending under its id and completes with the retried cut.
                out.append(error)
                out.append(retry)
                return
            if pending.kind == "delete" and (
                code == "item_delete_invalid_item_id" or "does not exist" in message
            ):
                # Already gone is what we wanted (e.g. the server dropped it after a cancel).
                self.mirror.on_deleted(pending.item_id or "")
                out.append(OpCompleted(pending.op_id, None))
            elif (
                pending.kind == "commit"
                and self.server_vad
                and (code == "input_audio_buffer_commit_empty")
            ):
                # The server VAD already committed this audio; our commit found it empty.
                out.append(OpCompleted(pending.op_id, None))
            else:
                out.append(OpFailed(pending.op_id, error))
            if error.fatal:
                out.append(error)
            return
        if code == "response_cancel_not_active" or "no active response" in lowered:
            logger.debug("response.cancel with nothing active (benign)")
            return
        out.append(error)

    def _truncate_retry(self, pending: _Pending, lowered: str) -> Send | None:
        """A truncate the server found longer than its own copy of the audio: cut there.

        The server's length X comes from its error text; the caller heard at least that much
        (we cut at what played, clamped to what we received), so truncating at X keeps the
        provider's memory a prefix of what was heard. X of 0 means nothing to keep: delete.
        """
        if pending.kind != "truncate" or pending.retried or pending.item_id is None:
            return None
        match = _ALREADY_SHORTER.search(lowered)
        if match is None:
            return None
        server_ms = int(match.group(1))
        pending.retried = True
        self._pending[pending.op_id] = pending
        if server_ms < 1:
            pending.kind = "delete"
            return Send(_delete_event(pending.op_id, pending.item_id))
        return Send(_truncate_event(pending.op_id, pending.item_id, server_ms))

    def _correlate(self, code: str | None, lowered: str) -> _Pending | None:
        """Find the op an error without (or with an unknown) `event_id` belongs to.

        `lowered` is the error message in lower case.
        """
        kind: OpKind | None = None
        if code == "conversation_already_has_active_response" or (
            "already has an active response" in lowered
        ):
            kind = "response.create"
        elif code == "input_audio_buffer_commit_empty":
            kind = "commit"
        elif code == "item_delete_invalid_item_id" or "error deleting item" in lowered:
            kind = "delete"
        elif (
            code in ("item_truncate_invalid_item_id", "unsupported_content_type")
            or "can be truncated" in lowered
            or "already shorter than" in lowered
            or "audio_end_ms" in lowered
        ):
            kind = "truncate"
        elif code == "item_create_invalid_previous_item_id" or "previous_item_id" in lowered:
            kind = "create"
        if kind is None:
            return None
        return self._pop_oldest(kind)

    # ----------------------------------------------------------------- input audio

    def _on_speech_started(self, ev: dict[str, Any], out: list[Output]) -> None:
        item_id = ev.get("item_id")
        out.append(
            InputSpeechStarted(
                item_id=str(item_id) if item_id is not None else None,
                audio_start_ms=float(ev.get("audio_start_ms") or 0.0),
            )
        )

    def _on_speech_stopped(self, ev: dict[str, Any], out: list[Output]) -> None:
        item_id = ev.get("item_id")
        out.append(
            InputSpeechStopped(
                item_id=str(item_id) if item_id is not None else None,
                audio_end_ms=float(ev.get("audio_end_ms") or 0.0),
            )
        )

    def _on_committed(self, ev: dict[str, Any], out: list[Output]) -> None:
        item_id = str(ev["item_id"])
        previous = ev.get("previous_item_id")
        previous = str(previous) if previous is not None else None
        self._committed.add(item_id)
        self.mirror.on_committed(item_id, previous)
        pending = self._pop_oldest("commit")
        if pending is not None:
            out.append(OpCompleted(pending.op_id, item_id))
        out.append(InputAudioCommitted(item_id=item_id, previous_item_id=previous))

    def _on_cleared(self, ev: dict[str, Any], out: list[Output]) -> None:
        pending = self._pop_oldest("clear")
        if pending is not None:
            out.append(OpCompleted(pending.op_id, None))

    def _on_transcription_delta(self, ev: dict[str, Any], out: list[Output]) -> None:
        item_id = str(ev["item_id"])
        text = self._input_transcripts.get(item_id, "") + str(ev.get("delta") or "")
        self._input_transcripts[item_id] = text
        out.append(InputTranscription(item_id=item_id, text=text, final=False))

    def _on_transcription_updated(self, ev: dict[str, Any], out: list[Output]) -> None:
        # xAI: cumulative transcript, not a delta.
        item_id = str(ev["item_id"])
        text = str(ev.get("transcript") or "")
        self._input_transcripts[item_id] = text
        out.append(InputTranscription(item_id=item_id, text=text, final=False))

    def _on_transcription_completed(self, ev: dict[str, Any], out: list[Output]) -> None:
        item_id = str(ev["item_id"])
        text = str(ev.get("transcript") or "")
        self._input_transcripts.pop(item_id, None)
        self.mirror.on_transcript(item_id, text)
        out.append(InputTranscription(item_id=item_id, text=text, final=True))

    def _on_transcription_failed(self, ev: dict[str, Any], out: list[Output]) -> None:
        item_id = str(ev["item_id"])
        err = ev.get("error") if isinstance(ev.get("error"), dict) else {}
        self._warn.warn(
            "transcription_failed",
            "input transcription failed for %s (%s)",
            item_id,
            (err or {}).get("code"),
        )
        # Emit what we have as final so nobody waits for a transcript that will not come.
        text = self._input_transcripts.pop(item_id, "")
        out.append(InputTranscription(item_id=item_id, text=text, final=True))

    # ----------------------------------------------------------------- conversation items

    def _on_item_added(self, ev: dict[str, Any], out: list[Output]) -> None:
        item = ev["item"]
        item_id = str(item["id"])
        previous = ev.get("previous_item_id")
        self.mirror.on_item_added(
            item,
            str(previous) if previous is not None else None,
            anchored="previous_item_id" in ev,
        )
        pending = self._pop_oldest("create", item_id=item_id)
        if (
            pending is None
            and item_id not in self._item_response
            and item_id not in self._committed
            and item.get("status") != "in_progress"  # response output, not one of ours
        ):
            # Server ignored our requested id: match the oldest create of the same kind.
            for candidate in self._pending.values():
                if (
                    candidate.kind == "create"
                    and candidate.item_type == item.get("type")
                    and candidate.role == item.get("role")
                ):
                    pending = self._pending.pop(candidate.op_id)
                    break
        if pending is not None:
            self.mirror.mark_client_created(item_id)
            if pending.local_id is not None:
                if pending.local_id == item_id:
                    self.aliases.pop(pending.local_id, None)
                else:
                    self.aliases[pending.local_id] = item_id
            out.append(OpCompleted(pending.op_id, item_id))

    def _on_item_done(self, ev: dict[str, Any], out: list[Output]) -> None:
        previous = ev.get("previous_item_id")
        self.mirror.on_item_done(ev["item"], str(previous) if previous is not None else None)

    def _on_item_truncated(self, ev: dict[str, Any], out: list[Output]) -> None:
        item_id = str(ev["item_id"])
        audio_end_ms = int(ev.get("audio_end_ms") or 0)
        self.mirror.on_truncated(item_id, audio_end_ms)
        pending = self._pop_oldest("truncate", item_id=item_id)
        if pending is not None:
            out.append(OpCompleted(pending.op_id, audio_end_ms))

    def _on_item_deleted(self, ev: dict[str, Any], out: list[Output]) -> None:
        item_id = str(ev["item_id"])
        self.mirror.on_deleted(item_id)
        pending = self._pop_oldest("delete", item_id=item_id)
        if pending is not None:
            out.append(OpCompleted(pending.op_id, None))

    # ----------------------------------------------------------------- responses

    def _start_response(
        self, response_id: str, request_id: str | None, modalities: Any, out: list[Output]
    ) -> _Response:
        if isinstance(modalities, list) and modalities:
            audio_out = "audio" in modalities
        else:
            audio_out = self.output_audio
        generation = Generation(
            response_id=response_id, request_id=request_id, created_at=self.clock.now()
        )
        response = _Response(generation=generation, audio_out=audio_out)
        self._responses[response_id] = response
        out.append(GenerationStarted(generation))
        return response

    def _on_response_created(self, ev: dict[str, Any], out: list[Output]) -> None:
        resp = ev["response"]
        response_id = str(resp["id"])
        if response_id in self._responses:
            return
        metadata = resp.get("metadata")
        request_id = metadata.get("client_event_id") if isinstance(metadata, dict) else None
        request_id = str(request_id) if request_id is not None else None
        response = self._start_response(response_id, request_id, resp.get("output_modalities"), out)
        if request_id is None:
            return
        if request_id in self._cancel_on_create:
            # Requested, then abandoned (timeout or cancel) before the server created it.
            self._cancel_on_create.discard(request_id)
            out.append(
                Send(
                    {
                        "type": "response.cancel",
                        "event_id": self._new_event_id(),
                        "response_id": response_id,
                    }
                )
            )
        pending = self._pending.get(request_id)
        if pending is not None and pending.kind == "response.create":
            del self._pending[request_id]
            out.append(OpCompleted(request_id, response.generation))

    def _response_for(self, ev: dict[str, Any], out: list[Output]) -> _Response:
        """The response an event belongs to; started implicitly if `.created` was missed."""
        response_id = ev.get("response_id")
        if response_id is not None:
            response = self._responses.get(str(response_id))
            if response is not None:
                return response
        item_id = ev.get("item_id")
        if item_id is not None and str(item_id) in self._item_response:
            return self._item_response[str(item_id)]
        if response_id is None:
            raise KeyError("response_id")
        self._warn.warn(
            "implicit_response",
            "response events for %s arrived before response.created; starting it",
            response_id,
        )
        return self._start_response(str(response_id), None, None, out)

    def _on_output_item_added(self, ev: dict[str, Any], out: list[Output]) -> None:
        response = self._response_for(ev, out)
        self._announce(response, ev["item"], ev.get("output_index"))

    def _announce(self, response: _Response, item: dict[str, Any], output_index: Any) -> None:
        """Register an output item of `response` (idempotent)."""
        item_id = str(item["id"])
        generation = response.generation
        if item_id in self._item_response:
            return
        index = (
            int(output_index) if output_index is not None else len(generation.announced_item_ids)
        )
        generation.announced_item_ids.append(item_id)
        self._item_response[item_id] = response
        item_type = item.get("type", "message")
        if item_type == "message":
            modalities: tuple[Modality, ...] = (
                ("audio", "text") if response.audio_out else ("text",)
            )
            phase = item.get("phase")
            message = MessageGeneration(
                item_id=item_id,
                response_id=generation.response_id,
                output_index=index,
                modalities=modalities,
                phase=str(phase) if phase is not None else None,
            )
            if not response.audio_out:
                message.audio.close()
            response.messages[item_id] = message
            generation.messages.send(message)
        elif item_type == "function_call":
            response.calls[item_id] = _Call(
                item_id=item_id,
                call_id=str(item.get("call_id") or ""),
                name=str(item.get("name") or ""),
            )

    def _message_for(self, ev: dict[str, Any], out: list[Output]) -> MessageGeneration:
        item_id = str(ev["item_id"])
        response = self._item_response.get(item_id)
        if response is not None:
            message = response.messages.get(item_id)
            if message is not None:
                return message
        # Content for an item never announced: announce it now rather than drop audio.
        response = self._response_for(ev, out)
        self._warn.warn(
            "implicit_item",
            "content for item %s arrived before response.output_item.added",
            item_id,
        )
        self._announce(response, {"id": item_id, "type": "message"}, ev.get("output_index"))
        return response.messages[item_id]

    def _on_content_part_added(self, ev: dict[str, Any], out: list[Output]) -> None:
        message = self._message_for(ev, out)
        part = ev.get("part")
        part_type = part.get("type") if isinstance(part, dict) else None
        if part_type in _TEXT_PART_TYPES and "audio" in message.modalities:
            # A text part under audio output: no audio will come for this message.
            message.modalities = ("text",)
            message.audio.close()

    def _on_audio_delta(self, ev: dict[str, Any], out: list[Output]) -> None:
        message = self._message_for(ev, out)
        samples, ms = self.audio_format.decode_b64(ev["delta"])
        message.audio_received_ms += ms
        self.mirror.add_audio(message.item_id, ms)
        generation = self._item_response[message.item_id].generation
        if generation.first_audio_at is None:
            generation.first_audio_at = self.clock.now()
        message.audio.send(samples)

    def _on_audio_done(self, ev: dict[str, Any], out: list[Output]) -> None:
        self._message_for(ev, out).audio.close()

    def _on_text_delta(self, ev: dict[str, Any], out: list[Output]) -> None:
        message = self._message_for(ev, out)
        delta = str(ev.get("delta") or "")
        if delta and not message.text.closed:
            message.text_received += delta
            message.text.send(delta)

    def _finish_text(self, message: MessageGeneration, full: Any) -> None:
        """Close a message's text; send the tail if the server's full text has more."""
        if (
            isinstance(full, str)
            and not message.text.closed
            and len(full) > len(message.text_received)
            and full.startswith(message.text_received)
        ):
            message.text.send(full[len(message.text_received) :])
            message.text_received = full
        message.text.close()

    def _on_transcript_done(self, ev: dict[str, Any], out: list[Output]) -> None:
        self._finish_text(self._message_for(ev, out), ev.get("transcript"))

    def _on_text_done(self, ev: dict[str, Any], out: list[Output]) -> None:
        self._finish_text(self._message_for(ev, out), ev.get("text"))

    def _on_output_item_done(self, ev: dict[str, Any], out: list[Output]) -> None:
        item = ev["item"]
        item_id = str(item["id"])
        response = self._item_response.get(item_id)
        if response is None:
            response = self._response_for(ev, out)
            self._announce(response, item, ev.get("output_index"))
        item_type = item.get("type", "message")
        if item_type == "message":
            message = response.messages[item_id]
            message.status = str(item.get("status") or "completed")
            message.audio.close()
            message.text.close()
        elif item_type == "function_call":
            self._emit_call(
                response, item_id, item.get("call_id"), item.get("name"), item.get("arguments")
            )

    def _call_for(self, ev: dict[str, Any], out: list[Output]) -> tuple[_Response, _Call]:
        item_id = str(ev["item_id"])
        response = self._item_response.get(item_id) or self._response_for(ev, out)
        call = response.calls.get(item_id)
        if call is None:
            self._announce(
                response,
                {
                    "id": item_id,
                    "type": "function_call",
                    "call_id": ev.get("call_id"),
                    "name": ev.get("name"),
                },
                ev.get("output_index"),
            )
            call = response.calls[item_id]
        return response, call

    def _on_arguments_delta(self, ev: dict[str, Any], out: list[Output]) -> None:
        response, call = self._call_for(ev, out)
        delta = str(ev.get("delta") or "")
        if not call.call_id and ev.get("call_id"):
            call.call_id = str(ev["call_id"])
        call.parts.append(delta)
        response.generation.tool_call_deltas.send(
            ToolCallDelta(item_id=call.item_id, call_id=call.call_id, name=call.name, delta=delta)
        )

    def _on_arguments_done(self, ev: dict[str, Any], out: list[Output]) -> None:
        response, call = self._call_for(ev, out)
        self._emit_call(
            response, call.item_id, ev.get("call_id"), ev.get("name"), ev.get("arguments")
        )

    def _emit_call(
        self, response: _Response, item_id: str, call_id: Any, name: Any, arguments: Any
    ) -> None:
        """Send the final `ToolCall` once per call id, whichever done-event comes first."""
        call = response.calls.get(item_id)
        if call is None:
            call = _Call(item_id=item_id, call_id=str(call_id or ""), name=str(name or ""))
            response.calls[item_id] = call
        final_call_id = str(call_id or call.call_id or item_id)
        if final_call_id in self._emitted_calls:
            return
        self._emitted_calls.add(final_call_id)
        final_args = arguments if isinstance(arguments, str) else "".join(call.parts)
        response.generation.tool_calls.send(
            ToolCall(
                item_id=item_id,
                call_id=final_call_id,
                name=str(name or call.name),
                arguments=final_args,
                response_id=response.generation.response_id,
            )
        )

    def _on_response_done(self, ev: dict[str, Any], out: list[Output]) -> None:
        resp = ev["response"]
        response_id = str(resp["id"])
        response = self._responses.pop(response_id, None)
        status = str(resp.get("status") or "completed")
        details = resp.get("status_details")
        details = details if isinstance(details, dict) else {}
        reason = details.get("reason")
        error = details.get("error")
        error_code = error.get("code") if isinstance(error, dict) else None
        if response is None:
            # Seen in production during interruptions: a done with no created. Nothing is
            # waiting on it, so there is nothing to end.
            logger.debug("response.done for unknown response %s (%s)", response_id, status)
            return
        output = resp.get("output")
        if isinstance(output, list):
            for item in output:
                if isinstance(item, dict) and "id" in item:
                    self._announce(response, item, None)
                    if item.get("type") == "function_call" and item.get("status") == "completed":
                        self._emit_call(
                            response,
                            str(item["id"]),
                            item.get("call_id"),
                            item.get("name"),
                            item.get("arguments"),
                        )
        usage = resp.get("usage")
        self._finish(
            response,
            status,
            str(reason) if reason is not None else None,
            str(error_code) if error_code is not None else None,
            tuple(response.generation.announced_item_ids),
            usage if isinstance(usage, dict) else None,
            out,
        )
        if status == "failed":
            message = error.get("message") if isinstance(error, dict) else None
            out.append(
                ProviderError(
                    error_kind(str(error_code) if error_code is not None else None, None),
                    str(message or f"response {response_id} failed"),
                    str(error_code) if error_code is not None else None,
                    operation="response",
                )
            )

    def _finish(
        self,
        response: _Response,
        status: str,
        reason: str | None,
        error_code: str | None,
        output_item_ids: tuple[str, ...],
        usage: dict[str, Any] | None,
        out: list[Output],
    ) -> None:
        """Close every stream of `response` and resolve its `done` (exactly once)."""
        generation = response.generation
        message_status = _message_status(status)
        for message in response.messages.values():
            if message.status is None or (
                message_status != "completed" and message.status != "completed"
            ):
                message.status = message_status
            message.audio.close()
            message.text.close()
        generation.messages.close()
        generation.tool_calls.close()
        generation.tool_call_deltas.close()
        for item_id in generation.announced_item_ids:
            if self._item_response.get(item_id) is response:
                del self._item_response[item_id]
        if not generation.done.done():
            generation.done.set_result(
                GenerationDone(
                    response_id=generation.response_id,
                    status=status,
                    reason=reason,
                    error_code=error_code,
                    output_item_ids=output_item_ids or tuple(generation.announced_item_ids),
                    usage=usage,
                )
            )
