"""One simulated realtime connection: client events in, server events out.

:class:`SimSession` owns the state of one WebSocket connection (session config, conversation,
input buffer, turn detector, brain, responses in flight) and the two records tests read:
``client_events`` and ``server_events`` (audio replaced by byte counts). Client frames are
handled synchronously in arrival order by :meth:`receive`; every server event goes through
:meth:`emit`, which stamps an ``event_id``, records it, logs it and queues the JSON text on
``outbox`` for the socket writer (see :mod:`vocalis.sim.server`). Responses are streamed by
tasks the caller spawns, paced on their audio timeline (``pace``) and interruptible.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from vocalis.sim import errors
from vocalis.sim.brain import Brain, ScriptCursor
from vocalis.sim.conversation import Conversation, Item
from vocalis.sim.faults import FaultTracker
from vocalis.sim.ids import IdFactory
from vocalis.sim.items import decode_audio, parse_client_item
from vocalis.sim.log import EventLog, summarize
from vocalis.sim.mcp import list_tools_events, new_listings
from vocalis.sim.responses import ResponseContext, ResponseRun
from vocalis.sim.scenario import FaultSpec, Scenario
from vocalis.sim.session_config import (
    SessionConfig,
    SessionKind,
    bytes_per_ms,
    default_session,
    default_transcription_session,
    session_from_request,
    validate_response_params,
)
from vocalis.sim.vad import InputBuffer, TurnDetector, TurnEvent
from vocalis.sim.voice import split_words

logger = logging.getLogger(__name__)


def _no_constants(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


# One decoder for every frame (json.loads with a keyword builds a decoder per call).
_STRICT_JSON = json.JSONDecoder(parse_constant=_no_constants)

MAX_APPEND_BYTES = 15 * 1024 * 1024
MIN_COMMIT_MS = 100.0
# Client events a transcription session accepts; the rest are refused (no conversation there).
_TRANSCRIPTION_EVENTS = frozenset(
    (
        "session.update",
        "input_audio_buffer.append",
        "input_audio_buffer.commit",
        "input_audio_buffer.clear",
    )
)
_RATE_LIMITS = (
    {"name": "requests", "limit": 5000, "remaining": 4999, "reset_seconds": 0.012},
    {"name": "tokens", "limit": 400000, "remaining": 399000, "reset_seconds": 0.15},
)
_OUTBOX_HIGH = 64
_OUTBOX_LOW = 16

_CLIENT_KEYS: dict[str, tuple[str, ...]] = {
    "session.update": ("session",),
    "input_audio_buffer.append": ("audio",),
    "input_audio_buffer.commit": (),
    "input_audio_buffer.clear": (),
    "conversation.item.create": ("item", "previous_item_id"),
    "conversation.item.retrieve": ("item_id",),
    "conversation.item.truncate": ("item_id", "content_index", "audio_end_ms"),
    "conversation.item.delete": ("item_id",),
    "response.create": ("response",),
    "response.cancel": ("response_id",),
    "output_audio_buffer.clear": (),
}


@dataclass(frozen=True, slots=True)
class Close:
    """Outbox control: send a close frame with ``code`` and stop writing."""

    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class Abort:
    """Outbox control: drop the TCP connection without a close frame."""


Frame = str | Close | Abort
Spawn = Callable[[Coroutine[Any, Any, None]], asyncio.Task[None]]


class _Drive:
    """The asyncio side of one response in flight."""

    def __init__(self, run: ResponseRun, faults: FaultTracker) -> None:
        self.run = run
        self.faults = faults
        self.created = False
        self.stop = asyncio.Event()


class SimSession:
    """State and records of one connection.

    Attributes tests read:

    * ``conversation.items`` — ordered :class:`~vocalis.sim.conversation.Item` objects
      (``id``, ``type``, ``role``, ``status``, ``text`` = text or transcript, ``audio_ms``,
      ``truncated_at_ms``; ``summary()`` gives a dict).
    * ``client_events`` / ``server_events`` — every event dict received / sent, in order,
      audio fields (``audio`` of appends, ``delta`` of audio deltas, ``content[].audio``)
      replaced by their byte count.
    * ``closed`` / ``close_code`` — set when the connection has ended.
    * ``notes`` — simulator decisions (script used, faults fired), also in the log.
    """

    def __init__(
        self,
        *,
        index: int,
        model: str,
        scenario: Scenario,
        pace: float = 0.0,
        log: EventLog | None = None,
        session_max_seconds: float | None = None,
        script: ScriptCursor | None = None,
        max_recorded_events: int | None = None,
        kind: SessionKind = SessionKind.REALTIME,
        requested_session: dict[str, Any] | None = None,
    ) -> None:
        self.index = index
        self.scenario = scenario
        self.pace = pace
        self.ids = IdFactory(f"{scenario.seed}:{index}")
        self.id = self.ids.new("sess")
        self.conversation_id = self.ids.new("conv")
        server = scenario.server
        max_seconds = session_max_seconds or server.session_max_seconds or 3600.0
        expires_at = int(time.time() + max_seconds)
        if kind is SessionKind.TRANSCRIPTION:
            base = default_transcription_session(session_id=self.id, expires_at=expires_at)
        else:
            base = default_session(
                session_id=self.id, model=model, expires_at=expires_at, voice=server.voice
            )
        if requested_session is not None:  # configured by the client secret it connected with
            base = session_from_request(kind, base, requested_session)
        self.config = SessionConfig(base)
        self.conversation = Conversation(truncate_granularity_ms=server.truncate_granularity_ms)
        self.brain = Brain(scenario, script)
        self.input = InputBuffer(bytes_per_ms(self.config.input_format))
        td = self.config.turn_detection
        self.detector = TurnDetector(td, self.config.input_format["type"], 0.0) if td else None
        self.client_events: list[dict[str, Any]] = []
        self.server_events: list[dict[str, Any]] = []
        # None: keep every event (tests read them by index). N: keep about the newest N of
        # each direction (a long-running server; a 20 ms append is ~0.4 KB of record).
        self._record_limit = max_recorded_events
        # No records and no log (the CLI without --log): skip the per-event summary copy.
        self._keeps_summaries = max_recorded_events != 0 or log is not None
        self.notes: list[str] = []
        self.closed = False
        self.close_code: int | None = None
        self.closing = False
        self.outbox: asyncio.Queue[Frame] = asyncio.Queue()
        self.active: _Drive | None = None  # the default-conversation response in flight
        self._drives: dict[str, _Drive] = {}
        self._log = log
        self._spawn: Spawn | None = None
        self._pending_user_item: str | None = None
        self._idle_timer: asyncio.Task[None] | None = None
        self._response_count = 0
        self._changed = asyncio.Event()
        self._drained = asyncio.Event()

    # --- records & waiting ------------------------------------------------------------------

    def _bump(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _record(self, events: list[dict[str, Any]], summary: dict[str, Any]) -> None:
        limit = self._record_limit
        if limit is None:
            events.append(summary)
        elif limit > 0:
            events.append(summary)
            if len(events) >= 2 * limit:
                del events[:-limit]  # trimmed in batches: amortized O(1) per event

    def note(self, text: str) -> None:
        self.notes.append(text)
        if self._log is not None:
            self._log.write(self.id, "note", text)

    async def wait_for(self, predicate: Callable[[SimSession], bool], within: float = 10.0) -> None:
        """Wait until ``predicate(self)`` holds (checked after every recorded event)."""
        async with asyncio.timeout(within):
            while not predicate(self):
                await self._changed.wait()

    async def wait_for_server_event(
        self, event_type: str, *, after: int = 0, within: float = 10.0
    ) -> dict[str, Any]:
        """The first sent event of ``event_type`` at index >= ``after`` (waits for it)."""
        return await self._wait_event(self.server_events, event_type, after, within)

    async def wait_for_client_event(
        self, event_type: str, *, after: int = 0, within: float = 10.0
    ) -> dict[str, Any]:
        """The first received event of ``event_type`` at index >= ``after`` (waits for it)."""
        return await self._wait_event(self.client_events, event_type, after, within)

    async def _wait_event(
        self, events: list[dict[str, Any]], event_type: str, after: int, within: float
    ) -> dict[str, Any]:
        found: list[dict[str, Any]] = []

        def match(_: SimSession) -> bool:
            for event in events[after:]:
                if event.get("type") == event_type:
                    found.append(event)
                    return True
            return False

        await self.wait_for(match, within)
        return found[0]

    def server_types(self) -> list[str]:
        """Types of all sent events, in order (convenient for sequence assertions)."""
        return [str(e.get("type")) for e in self.server_events]

    def final_state(self) -> dict[str, Any]:
        return {
            "session_id": self.id,
            "close_code": self.close_code,
            "conversation": [item.summary() for item in self.conversation.items],
            "session": self.config.session,
        }

    # --- output -----------------------------------------------------------------------------

    def emit(self, event: dict[str, Any]) -> None:
        """Stamp, record, log and queue one server event."""
        if self.closing:
            return
        full: dict[str, Any] = {"type": event["type"], "event_id": self.ids.event()}
        full.update(event)
        if self._keeps_summaries:
            summary = summarize(full)
            self._record(self.server_events, summary)
            if self._log is not None:
                self._log.write(self.id, "out", summary)
        self.outbox.put_nowait(json.dumps(full, separators=(",", ":")))
        self._bump()

    def emit_error(self, error: errors.RealtimeError, client_event_id: str | None = None) -> None:
        self.emit({"type": "error", "error": error.payload(client_event_id)})

    def send_raw(self, text: str) -> None:
        """Queue a raw (e.g. malformed) frame; recorded as ``{"type": None, "raw": text}``."""
        if self.closing:
            return
        self._record(self.server_events, {"type": None, "raw": text})
        if self._log is not None:
            self._log.write(self.id, "out", {"type": None, "raw": text})
        self.outbox.put_nowait(text)
        self._bump()

    def close(self, code: int, reason: str) -> None:
        """Queue a close frame; nothing is sent after it."""
        if not self.closing:
            self.closing = True
            self.outbox.put_nowait(Close(code, reason))
            self._stop_all()

    def abort(self) -> None:
        """Queue an abrupt connection drop (no close frame)."""
        if not self.closing:
            self.closing = True
            self.outbox.put_nowait(Abort())
            self._stop_all()

    def _stop_all(self) -> None:
        for drive in self._drives.values():
            drive.stop.set()

    def frame_sent(self) -> None:
        """Called by the writer after each frame: releases a throttled response stream."""
        if self.outbox.qsize() <= _OUTBOX_LOW:
            self._drained.set()

    async def _writable(self) -> None:
        while self.outbox.qsize() > _OUTBOX_HIGH and not self.closing:
            self._drained.clear()
            await self._drained.wait()
        await asyncio.sleep(0)

    def mark_closed(self, code: int | None) -> None:
        self.closed = True
        self.closing = True
        self.close_code = code
        self._stop_all()
        if self._log is not None:
            self._log.write(self.id, "state", self.final_state())
        self._bump()

    # --- lifecycle --------------------------------------------------------------------------

    def start(self, spawn: Spawn) -> None:
        """Send ``session.created`` (and optionally ``conversation.created``)."""
        self._spawn = spawn
        self.emit({"type": "session.created", "session": self.config.session})
        transcribing = self.config.kind is SessionKind.TRANSCRIPTION
        if self.scenario.server.send_conversation_created and not transcribing:
            self.emit(
                {
                    "type": "conversation.created",
                    "conversation": {"id": self.conversation_id, "object": "realtime.conversation"},
                }
            )

    def expire(self) -> None:
        """Session hit its maximum duration: ``session_expired`` then close 1001."""
        self.emit_error(errors.session_expired())
        self.close(1001, "session expired")

    # --- input ------------------------------------------------------------------------------

    def receive(self, raw: str | bytes) -> None:
        """Handle one client frame completely (errors become ``error`` events)."""
        if self.closing:
            return
        try:
            event = _STRICT_JSON.decode(raw if isinstance(raw, str) else raw.decode("utf-8"))
        except json.JSONDecodeError as exc:
            self._record_in({"type": None, "malformed_bytes": len(raw)})
            self.emit_error(errors.invalid_json(exc.msg))
            return
        except UnicodeDecodeError:
            self._record_in({"type": None, "malformed_bytes": len(raw)})
            self.emit_error(errors.invalid_json("not UTF-8"))
            return
        except (ValueError, RecursionError):
            # NaN/Infinity (not JSON), or nesting deeper than the decoder's stack: refused like
            # any malformed event (the client and both endpoints already do), not a crash.
            self._record_in({"type": None, "malformed_bytes": len(raw)})
            self.emit_error(errors.invalid_json("NaN, Infinity or nesting too deep"))
            return
        if not isinstance(event, dict):
            self._record_in({"type": None, "malformed_bytes": len(raw)})
            self.emit_error(errors.invalid_event("The event must be a JSON object."))
            return
        if self._keeps_summaries:
            self._record_in(summarize(event))
        else:
            self._bump()
        client_event_id = event.get("event_id")
        if not isinstance(client_event_id, str):
            client_event_id = None
        try:
            self._dispatch(event)
        except errors.RealtimeError as error:
            self.emit_error(error, client_event_id)
            if error.fatal:
                self.close(1000, error.message)
        except Exception:  # a simulator bug must not kill the connection silently
            logger.exception("simulator failed on %s", event.get("type"))
            self.emit_error(errors.server_error())

    def _record_in(self, summary: dict[str, Any]) -> None:
        self._record(self.client_events, summary)
        if self._log is not None:
            self._log.write(self.id, "in", summary)
        self._bump()

    def _dispatch(self, event: dict[str, Any]) -> None:
        event_type = event.get("type")
        if event_type is None:
            raise errors.missing_type()
        if not isinstance(event_type, str):
            raise errors.invalid_type("type", "a string", event_type)
        allowed = _CLIENT_KEYS.get(event_type)
        if allowed is None:
            raise errors.unknown_event_type(event_type)
        if (
            self.config.kind is SessionKind.TRANSCRIPTION
            and event_type not in _TRANSCRIPTION_EVENTS
        ):
            raise errors.not_in_transcription_session(event_type)
        for key in event:
            if key not in allowed and key not in ("type", "event_id"):
                raise errors.unknown_parameter(key)
        event_id = event.get("event_id")
        if event_id is not None:
            if not isinstance(event_id, str):
                raise errors.invalid_type("event_id", "a string", event_id)
            if len(event_id) > 512:
                raise errors.string_too_long("event_id", 512, len(event_id))
        handler = getattr(self, "_on_" + event_type.replace(".", "_"))
        handler(event)

    @staticmethod
    def _str(event: dict[str, Any], key: str, *, required: bool = True) -> str | None:
        value = event.get(key)
        if value is None:
            if required:
                raise errors.missing_parameter(key)
            return None
        if not isinstance(value, str):
            raise errors.invalid_type(key, "a string", value)
        return value

    @staticmethod
    def _int(event: dict[str, Any], key: str) -> int:
        value = event.get(key)
        if value is None:
            raise errors.missing_parameter(key)
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise errors.invalid_type(key, "an integer", value)
        return value

    # session

    def _on_session_update(self, event: dict[str, Any]) -> None:
        if "session" not in event:
            raise errors.missing_parameter("session")
        old_td = self.config.turn_detection
        old_format = self.config.input_format
        old_tools = self.config.tools
        full = self.config.update(event["session"])
        new_format = self.config.input_format
        if new_format != old_format:
            self.input.set_format(bytes_per_ms(new_format))
        td = self.config.turn_detection
        if td is None:
            self.detector = None
        elif (
            self.detector is None
            or new_format != old_format
            or old_td is None
            or old_td["type"] != td["type"]
        ):
            self.detector = TurnDetector(td, new_format["type"], self.input.total_ms)
        else:
            self.detector.configure(td)
        self.emit({"type": "session.updated", "session": full})
        for listing in new_listings(old_tools, self.config.tools, lambda: self.ids.new("item")):
            previous = self.conversation.insert(listing)
            assert listing.server_label is not None
            for mcp_event in list_tools_events(
                self.scenario, listing.server_label, listing, previous
            ):
                self.emit(mcp_event)

    # input audio buffer

    def _on_input_audio_buffer_append(self, event: dict[str, Any]) -> None:
        data = self._str(event, "audio")
        assert data is not None
        if len(data) * 3 // 4 > MAX_APPEND_BYTES:
            raise errors.RealtimeError(
                "invalid_value",
                f"Invalid 'audio': audio too large. Expected at most {MAX_APPEND_BYTES} bytes "
                "per append.",
                param="audio",
            )
        audio = decode_audio(data)
        self.input.append(audio)
        if self.detector is not None:
            for turn_event in self.detector.feed(audio):
                self._on_turn_event(turn_event)

    def _on_turn_event(self, turn: TurnEvent) -> None:
        at_ms = round(turn.at_ms)
        if turn.kind == "speech_started":
            self._disarm_idle()
            self._pending_user_item = self.ids.new("item")
            self.input.drop_before(turn.at_ms)
            self.emit(
                {
                    "type": "input_audio_buffer.speech_started",
                    "audio_start_ms": at_ms,
                    "item_id": self._pending_user_item,
                }
            )
            detector = self.detector
            if detector is not None and detector.interrupt_response and self.active is not None:
                self.note(f"barge-in cancels {self.active.run.id}")
                self._cancel(self.active, "turn_detected")
            return
        item_id = self._pending_user_item or self.ids.new("item")
        self._pending_user_item = None
        self.emit(
            {"type": "input_audio_buffer.speech_stopped", "audio_end_ms": at_ms, "item_id": item_id}
        )
        if self.input.buffered_ms <= 0:
            return
        self._commit(item_id)
        detector = self.detector
        if self.config.kind is SessionKind.TRANSCRIPTION:
            return  # a transcription session never answers
        if detector is not None and detector.create_response:
            if self.active is not None:
                error = errors.active_response(self.active.run.id)
                self.emit_error(error, None)
            else:
                self._start_response({}, source_event="vad")

    def _on_input_audio_buffer_commit(self, event: dict[str, Any]) -> None:
        buffered = self.input.buffered_ms
        if buffered < MIN_COMMIT_MS:
            raise errors.commit_empty(buffered)
        self._commit(self._pending_user_item or self.ids.new("item"))
        self._pending_user_item = None

    def _commit(self, item_id: str) -> None:
        audio = self.input.take()
        item = Item(
            id=item_id,
            type="message",
            role="user",
            content=[{"type": "input_audio", "transcript": None}],
            audio_source=audio,
            audio_nbytes=len(audio),
            bytes_per_ms=self.input.bytes_per_ms,
        )
        previous = self.conversation.insert(item)
        self.emit(
            {
                "type": "input_audio_buffer.committed",
                "previous_item_id": previous,
                "item_id": item_id,
            }
        )
        if self.config.kind is SessionKind.REALTIME:
            wire = item.to_wire()
            self.emit(
                {"type": "conversation.item.added", "previous_item_id": previous, "item": wire}
            )
            self.emit(
                {"type": "conversation.item.done", "previous_item_id": previous, "item": wire}
            )
        transcript = self.brain.take_user_transcript()
        if self.config.transcription is not None:
            self._transcribe(item, transcript)

    def _transcribe(self, item: Item, transcript: str | None) -> None:
        if transcript is None:
            self.emit(
                {
                    "type": "conversation.item.input_audio_transcription.failed",
                    "item_id": item.id,
                    "content_index": 0,
                    "error": {
                        "type": "transcription_error",
                        "code": "audio_unintelligible",
                        "message": "The audio could not be transcribed.",
                        "param": None,
                    },
                }
            )
            return
        for word in split_words(transcript):
            self.emit(
                {
                    "type": "conversation.item.input_audio_transcription.delta",
                    "item_id": item.id,
                    "content_index": 0,
                    "delta": word.text,
                }
            )
        item.content[0]["transcript"] = transcript
        self.emit(
            {
                "type": "conversation.item.input_audio_transcription.completed",
                "item_id": item.id,
                "content_index": 0,
                "transcript": transcript,
                "usage": {"type": "duration", "seconds": round(item.audio_ms / 1000, 3)},
            }
        )

    def _on_input_audio_buffer_clear(self, event: dict[str, Any]) -> None:
        self.input.clear()
        self.emit({"type": "input_audio_buffer.cleared"})

    def _on_output_audio_buffer_clear(self, event: dict[str, Any]) -> None:
        # Unverified text: WebRTC/SIP-only event sent over a WebSocket.
        raise errors.invalid_event(
            "output_audio_buffer.clear is only supported for WebRTC and SIP connections."
        )

    # conversation items

    def _known_call_ids(self) -> set[str]:
        return {
            item.call_id
            for item in self.conversation.items
            if item.type == "function_call" and item.call_id
        }

    def _on_conversation_item_create(self, event: dict[str, Any]) -> None:
        previous_item_id = self._str(event, "previous_item_id", required=False)
        item = parse_client_item(
            event.get("item"),
            new_id=lambda: self.ids.new("item"),
            input_bytes_per_ms=self.input.bytes_per_ms,
            known_call_ids=self._known_call_ids(),
            known_approval_ids=frozenset(
                i.id for i in self.conversation.items if i.type == "mcp_approval_request"
            ),
        )
        previous = self.conversation.insert(item, previous_item_id)
        wire = item.to_wire()
        self.emit({"type": "conversation.item.added", "previous_item_id": previous, "item": wire})
        self.emit({"type": "conversation.item.done", "previous_item_id": previous, "item": wire})

    def _on_conversation_item_retrieve(self, event: dict[str, Any]) -> None:
        item_id = self._str(event, "item_id")
        assert item_id is not None
        item = self.conversation.retrieve(item_id)
        self.emit({"type": "conversation.item.retrieved", "item": item.to_wire(include_audio=True)})

    def _on_conversation_item_truncate(self, event: dict[str, Any]) -> None:
        item_id = self._str(event, "item_id")
        assert item_id is not None
        content_index = self._int(event, "content_index") if "content_index" in event else 0
        audio_end_ms = self._int(event, "audio_end_ms")
        self.conversation.truncate(item_id, content_index, audio_end_ms)
        self.emit(
            {
                "type": "conversation.item.truncated",
                "item_id": item_id,
                "content_index": content_index,
                "audio_end_ms": audio_end_ms,
            }
        )

    def _on_conversation_item_delete(self, event: dict[str, Any]) -> None:
        item_id = self._str(event, "item_id")
        assert item_id is not None
        self.conversation.delete(item_id)
        self.emit({"type": "conversation.item.deleted", "item_id": item_id})

    # responses

    def _on_response_create(self, event: dict[str, Any]) -> None:
        params = validate_response_params(event.get("response"))
        out_of_band = params.get("conversation") == "none"
        if not out_of_band and self.active is not None:
            raise errors.active_response(self.active.run.id)
        self._start_response(params, source_event="response.create")

    def _on_response_cancel(self, event: dict[str, Any]) -> None:
        response_id = self._str(event, "response_id", required=False)
        drive = self._drives.get(response_id) if response_id else self.active
        if drive is None or drive.run.finished:
            raise errors.cancel_not_active()
        self._cancel(drive, "client_cancelled")

    def _cancel(self, drive: _Drive, reason: str) -> None:
        self._end_early(drive, lambda: drive.run.cancel(reason))

    def _fail(self, drive: _Drive, error: dict[str, Any]) -> None:
        self._end_early(drive, lambda: drive.run.fail(error))

    def _end_early(self, drive: _Drive, end: Callable[[], list[dict[str, Any]]]) -> None:
        """End a response before its script did (cancelled, failed, incomplete): its
        `response.created` first if it was never sent, then `end()`'s closing events."""
        if not drive.created:
            self._emit_created(drive)
        for event in end():
            self.emit(event)
        self._ended(drive)

    def _ended(self, drive: _Drive) -> None:
        drive.stop.set()
        self._drives.pop(drive.run.id, None)
        if self.active is drive:
            self.active = None
            if drive.run.status == "completed":
                self._arm_idle(sum(item.audio_ms for item in drive.run.items))

    # idle timeout (server_vad.idle_timeout_ms)

    def _arm_idle(self, audio_ms: float) -> None:
        """After a response, wait for its audio to play out (real time) plus the idle timeout."""
        self._disarm_idle()
        td = self.config.turn_detection
        if td is None or td["type"] != "server_vad" or td.get("idle_timeout_ms") is None:
            return
        if self._spawn is None or self.closing:
            return
        delay = (audio_ms + float(td["idle_timeout_ms"])) / 1000.0
        self._idle_timer = self._spawn(self._idle_after(delay))

    def _disarm_idle(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None

    async def _idle_after(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self._idle_timer = None
        detector = self.detector
        td = self.config.turn_detection
        if self.closing or self.active is not None or (detector and detector.in_speech):
            return
        if td is None or td.get("idle_timeout_ms") is None:
            return
        item_id = self.ids.new("item")
        self.emit(
            {
                "type": "input_audio_buffer.timeout_triggered",
                "audio_start_ms": round(self.input.start_ms),
                "audio_end_ms": round(self.input.total_ms),
                "item_id": item_id,
            }
        )
        self._commit(item_id)
        self._start_response({}, source_event="idle_timeout")

    def _emit_created(self, drive: _Drive) -> dict[str, Any]:
        drive.created = True
        event = drive.run.created_event()
        self.emit(event)
        if self.scenario.server.rate_limits_updated:
            # "Emitted at the beginning of a Response" (the SDK's RateLimitsUpdatedEvent).
            self.emit({"type": "rate_limits.updated", "rate_limits": _RATE_LIMITS})
        return event

    def _input_tokens(self, instructions: str) -> tuple[int, int]:
        text_chars = len(instructions)
        audio_ms = 0.0
        for item in self.conversation.items:
            text_chars += len(item.text or "")
            if item.role == "user":
                audio_ms += item.audio_ms
        return math.ceil(text_chars / 4), math.ceil(audio_ms / 100)

    def _start_response(self, params: dict[str, Any], *, source_event: str) -> None:
        session = self.config
        if params.get("conversation") != "none":
            self._disarm_idle()
        out_of_band = params.get("conversation") == "none"
        instructions = params.get("instructions")
        tools = params.get("tools", session.tools)
        tool_choice = params.get("tool_choice", session.session["tool_choice"])
        output = params.get("audio", {}).get("output", {})
        self._response_count += 1
        text_tokens, audio_tokens = self._input_tokens(
            instructions if instructions is not None else session.session["instructions"]
        )
        ctx = ResponseContext(
            response_id=self.ids.new("resp"),
            conversation_id=None if out_of_band else self.conversation_id,
            output_modalities=params.get("output_modalities", session.output_modalities),
            output_format=output.get("format", session.output_format),
            voice=output.get("voice", session.voice),
            speed=session.speed,
            max_output_tokens=params.get("max_output_tokens", session.session["max_output_tokens"]),
            metadata=params.get("metadata"),
            lookahead_ms=self.scenario.server.transcript_lookahead_ms,
            seed=self.scenario.seed,
            input_text_tokens=text_tokens,
            input_audio_tokens=audio_tokens,
        )
        plan = self.brain.plan(
            instructions=instructions,
            out_of_band=out_of_band,
            items=self.conversation.items,
            tools=tools,
            tool_choice=tool_choice,
        )
        self.note(f"{ctx.response_id} ({source_event}) answered by {plan.source}")
        for text in plan.notes:
            self.note(f"{ctx.response_id}: {text}")
        run = ResponseRun(
            ctx, plan, conversation=None if out_of_band else self.conversation, ids=self.ids
        )
        drive = _Drive(run, FaultTracker(plan.faults))
        self._drives[run.id] = drive
        if not out_of_band:
            self.active = drive
        assert self._spawn is not None, "start() must be called before responses"
        self._spawn(self._drive(drive))

    async def _sleep(self, drive: _Drive, seconds: float) -> None:
        """Sleep, waking early when the response is stopped (cancel, close)."""
        if seconds <= 0:
            return
        try:
            async with asyncio.timeout(seconds):
                await drive.stop.wait()
        except TimeoutError:
            pass

    async def _drive(self, drive: _Drive) -> None:
        """Stream one response; a bug in it fails the response instead of the connection."""
        try:
            await self._stream_response(drive)
        except Exception:
            logger.exception("simulated response %s crashed", drive.run.id)
            if not drive.run.finished and not self.closing:
                self._fail(drive, {"type": "server_error", "code": "server_error"})

    async def _stream_response(self, drive: _Drive) -> None:
        run = drive.run
        if run.needs_synthesis:
            await asyncio.to_thread(run.prepare)
        for fault in drive.faults.before_created():
            await self._fire(fault, drive)
        if drive.stop.is_set() or self.closing:
            return
        if await self._after(drive, self._emit_created(drive)):
            return
        loop = asyncio.get_running_loop()
        started = loop.time()
        pace = self.pace
        for element in run.stream():
            if isinstance(element, float):
                if pace > 0:
                    await self._sleep(drive, started + element / 1000.0 / pace - loop.time())
                    if drive.stop.is_set() or self.closing:
                        return
                continue
            self.emit(element)
            kind = element["type"]
            if kind == "response.output_audio.delta":
                self.config.voice_locked = True
            elif kind == "response.done":
                self._ended(drive)
                # Faults placed "after response.done" (e.g. a drop between turns) still fire.
                await self._after(drive, element)
                return
            if await self._after(drive, element):
                return
            await self._writable()
            if drive.stop.is_set() or self.closing:
                return

    async def _after(self, drive: _Drive, event: dict[str, Any]) -> bool:
        """Fire faults due after ``event``; True when the response is over."""
        if drive.faults:
            for fault in drive.faults.after_event(event, drive.run.item_audio_ms):
                await self._fire(fault, drive)
        return drive.stop.is_set() or self.closing

    async def _fire(self, fault: FaultSpec, drive: _Drive) -> None:
        self.note(f"fault {fault.kind} fired in {drive.run.id}")
        kind = fault.kind
        if kind == "drop":
            self.abort()
        elif kind in ("stall", "slow_first_byte"):
            await self._sleep(drive, fault.seconds)
        elif kind == "malformed_frame":
            self.send_raw(fault.frame or '{"type":"response.output_audio.delta","delta":"AAA')
        elif kind == "unknown_event":
            self.emit({"type": fault.event_type, "response_id": drive.run.id})
        elif kind == "error":
            self.emit_error(
                errors.server_error(
                    fault.code, fault.message, param=fault.param, type=fault.error_type
                )
            )
        elif kind == "fail":
            error: dict[str, Any] = {
                "type": fault.error_type or "server_error",
                "code": fault.code or "server_error",
            }
            if fault.message:
                error["message"] = fault.message
            self._fail(drive, error)
        elif kind == "incomplete":
            self._end_early(drive, lambda: drive.run.end_incomplete(fault.reason))
        elif kind == "session_expired":
            self.expire()
