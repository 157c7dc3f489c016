"""The protocol core of one simulated realtime connection (synchronous, no I/O).

:class:`ProtocolCore` holds the state of a session — its configuration, conversation, input
buffer, turn detector, brain and responses in flight — and turns each input into a list of
outputs (:mod:`vocalis.sim.commands`): server events (dicts without ``event_id``) and commands
for the asyncio driver (stream this response, stop that one, arm the idle timer, close).
Client events go through an explicit dispatch table, :data:`HANDLERS` (event type -> handler);
a handler validates, mutates the state and appends outputs, or raises the real API's
:class:`~vocalis.sim.errors.RealtimeError`, which becomes an ``error`` event. The driver feeds
the core the other inputs: each event of a streamed response (:meth:`response_event`), the
idle timer firing, the session expiring, a scripted fault ending a response early.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

from vocalis.sim import envelope, errors
from vocalis.sim.brain import Brain, ScriptCursor
from vocalis.sim.commands import (
    ArmIdle,
    CloseSocket,
    DisarmIdle,
    Note,
    Output,
    StartResponse,
    StopResponse,
)
from vocalis.sim.conversation import Conversation
from vocalis.sim.faults import LostReplies
from vocalis.sim.ids import IdFactory
from vocalis.sim.input_events import (
    committed_events,
    transcription_events,
    user_audio_item,
)
from vocalis.sim.items import decode_audio, parse_client_item
from vocalis.sim.mcp import list_tools_events, new_listings
from vocalis.sim.response_context import ResponseContext
from vocalis.sim.responses import ResponseRun
from vocalis.sim.scenario import Scenario
from vocalis.sim.session_config import (
    SessionConfig,
    SessionKind,
    TurnDetection,
    bytes_per_ms,
    default_session,
    default_transcription_session,
    session_from_request,
    validate_response_params,
)
from vocalis.sim.vad import InputBuffer, TurnDetector, TurnEvent

logger = logging.getLogger(__name__)

MAX_APPEND_BYTES = 15 * 1024 * 1024
MIN_COMMIT_MS = 100.0
RATE_LIMITS = (
    {"name": "requests", "limit": 5000, "remaining": 4999, "reset_seconds": 0.012},
    {"name": "tokens", "limit": 400000, "remaining": 399000, "reset_seconds": 0.15},
)
EndResponse = Callable[[ResponseRun], list[dict[str, Any]]]
"""How a response ends early: ``run.cancel(reason)``, ``run.fail(error)``, ..."""


def _initial_session(
    kind: SessionKind,
    session_id: str,
    model: str,
    expires_at: int,
    voice: str,
    requested: dict[str, Any] | None,
) -> dict[str, Any]:
    if kind is SessionKind.TRANSCRIPTION:
        base = default_transcription_session(session_id=session_id, expires_at=expires_at)
    else:
        base = default_session(
            session_id=session_id, model=model, expires_at=expires_at, voice=voice
        )
    # A session opened with a client secret starts from the configuration it was minted with.
    return base if requested is None else session_from_request(kind, base, requested)


class ProtocolCore:
    """State and decisions of one connection; every method returns the outputs it caused."""

    def __init__(
        self,
        *,
        index: int,
        model: str,
        scenario: Scenario,
        session_max_seconds: float | None = None,
        script: ScriptCursor | None = None,
        kind: SessionKind = SessionKind.REALTIME,
        requested_session: dict[str, Any] | None = None,
    ) -> None:
        self.scenario = scenario
        self.ids = IdFactory(f"{scenario.seed}:{index}")
        self.id = self.ids.new("sess")
        self.conversation_id = self.ids.new("conv")
        server = scenario.server
        max_seconds = session_max_seconds or server.session_max_seconds or 3600.0
        expires_at = int(time.time() + max_seconds)
        self.config = SessionConfig(
            _initial_session(kind, self.id, model, expires_at, server.voice, requested_session)
        )
        self.conversation = Conversation(truncate_granularity_ms=server.truncate_granularity_ms)
        self.brain = Brain(scenario, script)
        self.input = InputBuffer(bytes_per_ms(self.config.input_format))
        vad = self.config.vad
        self.detector = TurnDetector(vad, self.config.input_format_type, 0.0) if vad else None
        self.active: ResponseRun | None = None  # the default-conversation response in flight
        self.runs: dict[str, ResponseRun] = {}  # every response in flight, by id
        self._created: set[str] = set()
        self._pending_user_item: str | None = None
        self._lost = LostReplies(server, connection=index + 1)
        self._out: list[Output] = []

    def _emit(self, event: dict[str, Any]) -> None:
        self._out.append(event)

    def _take(self) -> list[Output]:
        out, self._out = self._out, []
        return out

    # --- inputs from the driver -------------------------------------------------------------

    def start(self) -> list[Output]:
        """``session.created``, then ``conversation.created`` in a realtime session."""
        self._emit({"type": "session.created", "session": self.config.session})
        realtime = self.config.kind is SessionKind.REALTIME
        if self.scenario.server.send_conversation_created and realtime:
            conversation = {"id": self.conversation_id, "object": "realtime.conversation"}
            self._emit({"type": "conversation.created", "conversation": conversation})
        return self._take()

    def handle(self, event: dict[str, Any]) -> list[Output]:
        """One decoded client event: its handler's outputs, or the ``error`` it earned."""
        try:
            event_type = envelope.check(event, self.config.kind)
            HANDLERS[event_type](self, event)
        except errors.RealtimeError as error:
            self._out.append(
                {"type": "error", "error": error.payload(envelope.client_event_id(event))}
            )
            if error.fatal:
                self._out.append(CloseSocket(1000, error.message))
        except Exception:  # a simulator bug must not kill the connection silently
            logger.exception("simulator failed on %s", event.get("type"))
            self._out.append({"type": "error", "error": errors.server_error().payload()})
        return self._take()

    def expire(self) -> list[Output]:
        """The session hit its maximum duration: ``session_expired`` then close 1001."""
        self._emit({"type": "error", "error": errors.session_expired().payload()})
        self._out.append(CloseSocket(1001, "session expired"))
        return self._take()

    def response_created(self, run: ResponseRun) -> list[Output]:
        """``response.created`` (then ``rate_limits.updated``, "at the beginning of a Response"
        per the SDK) — once per response, whoever asks first (the stream or an early end)."""
        self._announce(run)
        return self._take()

    def _announce(self, run: ResponseRun) -> None:
        if run.id not in self._created:
            self._created.add(run.id)
            self._emit(run.created_event())
            if self.scenario.server.rate_limits_updated:
                self._emit({"type": "rate_limits.updated", "rate_limits": list(RATE_LIMITS)})

    def response_event(self, run: ResponseRun, event: dict[str, Any]) -> list[Output]:
        """One streamed event of ``run``; ``response.done`` settles it."""
        self._emit(event)
        kind = event["type"]
        if kind == "response.output_audio.delta":
            self.config.voice_locked = True
        elif kind == "response.done":
            self._ended(run)
        return self._take()

    def end_response(self, run: ResponseRun, end: EndResponse) -> list[Output]:
        """End ``run`` before its script did (cancelled, failed, incomplete)."""
        self._end_early(run, end)
        return self._take()

    def idle_timeout(self) -> list[Output]:
        """The idle timer fired: ``timeout_triggered``, a commit and a response (if still idle)."""
        vad = self.config.vad
        in_speech = self.detector is not None and self.detector.in_speech
        if self.active is not None or in_speech or vad is None or vad.idle_timeout_ms is None:
            return []
        item_id = self.ids.new("item")
        self._emit(
            {
                "type": "input_audio_buffer.timeout_triggered",
                "audio_start_ms": round(self.input.start_ms),
                "audio_end_ms": round(self.input.total_ms),
                "item_id": item_id,
            }
        )
        self._commit(item_id)
        self._start_response({}, source_event="idle_timeout")
        return self._take()

    # --- session ----------------------------------------------------------------------------

    def _session_update(self, event: dict[str, Any]) -> None:
        if event.get("session") is None:
            raise errors.missing_parameter("session")
        old_vad = self.config.vad
        old_format = self.config.input_format
        old_tools = self.config.tools
        full = self.config.update(event["session"])
        new_format = self.config.input_format
        if new_format != old_format:
            self.input.set_format(bytes_per_ms(new_format))
        self._reconfigure_detector(old_vad, new_format != old_format)
        self._emit({"type": "session.updated", "session": full})
        for listing in new_listings(old_tools, self.config.tools, lambda: self.ids.new("item")):
            previous = self.conversation.insert(listing)
            assert listing.server_label is not None
            for mcp_event in list_tools_events(
                self.scenario, listing.server_label, listing, previous
            ):
                self._emit(mcp_event)

    def _reconfigure_detector(self, old: TurnDetection | None, new_format: bool) -> None:
        """A new detector when VAD is switched on, changes kind or its input format changes
        (its state would be wrong); otherwise the running one is retuned."""
        vad = self.config.vad
        if vad is None:
            self.detector = None
        elif self.detector is None or new_format or old is None or old.kind != vad.kind:
            fmt = self.config.input_format_type
            self.detector = TurnDetector(vad, fmt, self.input.total_ms)
        else:
            self.detector.configure(vad)

    # --- input audio buffer -----------------------------------------------------------------

    def _append(self, event: dict[str, Any]) -> None:
        data = envelope.string(event, "audio")
        if len(data) * 3 // 4 > MAX_APPEND_BYTES:
            raise errors.RealtimeError(
                "invalid_value",
                f"Invalid 'audio': audio too large. Expected at most {MAX_APPEND_BYTES} bytes "
                "per append.",
                param="audio",
            )
        audio = decode_audio(data)
        self.input.append(audio)
        detector = self.detector
        if detector is not None:
            for turn_event in detector.feed(audio):
                self._turn(turn_event)
            if not detector.in_speech:
                self.input.drop_before(self.input.total_ms - detector.idle_keep_ms)

    def _turn(self, turn: TurnEvent) -> None:
        if turn.kind == "speech_started":
            self._speech_started(turn)
            return
        item_id = self._pending_user_item or self.ids.new("item")
        self._pending_user_item = None
        self._emit(
            {
                "type": "input_audio_buffer.speech_stopped",
                "audio_end_ms": round(turn.at_ms),
                "item_id": item_id,
            }
        )
        if self.input.buffered_ms <= 0:
            return
        self._commit(item_id)
        if self.config.kind is SessionKind.TRANSCRIPTION:
            return  # a transcription session never answers
        if self.detector is not None and self.detector.create_response:
            if self.active is not None:
                self._emit(
                    {"type": "error", "error": errors.active_response(self.active.id).payload()}
                )
            else:
                self._start_response({}, source_event="vad")

    def _speech_started(self, turn: TurnEvent) -> None:
        self._out.append(DisarmIdle())
        self._pending_user_item = self.ids.new("item")
        self.input.drop_before(turn.at_ms)
        self._emit(
            {
                "type": "input_audio_buffer.speech_started",
                "audio_start_ms": round(turn.at_ms),
                "item_id": self._pending_user_item,
            }
        )
        active = self.active
        if self.detector is not None and self.detector.interrupt_response and active is not None:
            self._out.append(Note(f"barge-in cancels {active.id}"))
            self._end_early(active, lambda run: run.cancel("turn_detected"))

    def _commit_buffer(self, event: dict[str, Any]) -> None:
        buffered = self.input.buffered_ms
        if buffered < MIN_COMMIT_MS:
            raise errors.commit_empty(buffered)
        self._commit(self._pending_user_item or self.ids.new("item"))
        self._pending_user_item = None

    def _commit(self, item_id: str) -> None:
        item = user_audio_item(item_id, self.input.take(), self.input.bytes_per_ms)
        previous = self.conversation.insert(item)
        realtime = self.config.kind is SessionKind.REALTIME
        self._out.extend(committed_events(item, previous, announce=realtime))
        transcript = self.brain.take_user_transcript()
        if self.config.transcription is not None:
            self._out.extend(transcription_events(item, transcript))

    def _clear_buffer(self, event: dict[str, Any]) -> None:
        self.input.clear()
        self._emit({"type": "input_audio_buffer.cleared"})

    def _clear_output(self, event: dict[str, Any]) -> None:
        # Unverified text: WebRTC/SIP-only event sent over a WebSocket.
        raise errors.invalid_event(
            "output_audio_buffer.clear is only supported for WebRTC and SIP connections."
        )

    # --- conversation items -----------------------------------------------------------------

    def _create_item(self, event: dict[str, Any]) -> None:
        items = self.conversation.items
        item = parse_client_item(
            event.get("item"),
            new_id=lambda: self.ids.new("item"),
            input_bytes_per_ms=self.input.bytes_per_ms,
            known_call_ids={i.call_id for i in items if i.type == "function_call" and i.call_id},
            known_approval_ids=frozenset(i.id for i in items if i.type == "mcp_approval_request"),
        )
        previous_id = envelope.optional_string(event, "previous_item_id")
        previous = self.conversation.insert(item, previous_id)
        if self._lost.ack_lost(item.type):
            self._out.append(Note(f"ack of {item.id} lost (scenario lost_item_acks)"))
            return
        wire = item.to_wire()
        self._emit({"type": "conversation.item.added", "previous_item_id": previous, "item": wire})
        self._emit({"type": "conversation.item.done", "previous_item_id": previous, "item": wire})

    def _retrieve_item(self, event: dict[str, Any]) -> None:
        item_id = envelope.string(event, "item_id")
        if self._lost.retrieve_lost():
            self._out.append(Note(f"retrieve of {item_id} lost (scenario lost_retrieves)"))
            return
        item = self.conversation.retrieve(item_id)
        self._emit(
            {"type": "conversation.item.retrieved", "item": item.to_wire(include_audio=True)}
        )

    def _truncate_item(self, event: dict[str, Any]) -> None:
        item_id = envelope.string(event, "item_id")
        given = event.get("content_index") is not None
        content_index = envelope.integer(event, "content_index") if given else 0
        audio_end_ms = envelope.integer(event, "audio_end_ms")
        self.conversation.truncate(item_id, content_index, audio_end_ms)
        self._emit(
            {
                "type": "conversation.item.truncated",
                "item_id": item_id,
                "content_index": content_index,
                "audio_end_ms": audio_end_ms,
            }
        )

    def _delete_item(self, event: dict[str, Any]) -> None:
        item_id = envelope.string(event, "item_id")
        self.conversation.delete(item_id)
        self._emit({"type": "conversation.item.deleted", "item_id": item_id})

    # --- responses --------------------------------------------------------------------------

    def _create_response(self, event: dict[str, Any]) -> None:
        params = validate_response_params(event.get("response"))
        if params.get("conversation") != "none" and self.active is not None:
            raise errors.active_response(self.active.id)
        self._start_response(params, source_event="response.create")

    def _cancel_response(self, event: dict[str, Any]) -> None:
        response_id = envelope.optional_string(event, "response_id")
        run = self.runs.get(response_id) if response_id else self.active
        if run is None or run.finished:
            raise errors.cancel_not_active()
        self._end_early(run, lambda r: r.cancel("client_cancelled"))

    def _end_early(self, run: ResponseRun, end: EndResponse) -> None:
        """Its ``response.created`` first if never sent, then ``end``'s closing events."""
        self._announce(run)
        for event in end(run):
            self._emit(event)
        self._out.append(StopResponse(run.id))
        self._ended(run)

    def _ended(self, run: ResponseRun) -> None:
        self.runs.pop(run.id, None)
        if self.active is not run:
            return
        self.active = None
        vad = self.config.vad
        if run.status != "completed" or vad is None or vad.kind != "server_vad":
            return
        if vad.idle_timeout_ms is not None:
            # The timeout counts from the end of playout: the response's audio at real time.
            audio_ms = sum(item.audio_ms for item in run.items)
            self._out.append(ArmIdle((audio_ms + vad.idle_timeout_ms) / 1000.0))

    def _input_tokens(self, instructions: str) -> tuple[int, int]:
        text_chars = len(instructions)
        audio_ms = 0.0
        for item in self.conversation.items:
            text_chars += len(item.text or "")
            if item.role == "user":
                audio_ms += item.audio_ms
        return math.ceil(text_chars / 4), math.ceil(audio_ms / 100)

    def _context(self, params: dict[str, Any], out_of_band: bool) -> ResponseContext:
        session = self.config
        instructions = params.get("instructions")
        text_tokens, audio_tokens = self._input_tokens(
            instructions if instructions is not None else session.session["instructions"]
        )
        output = params.get("audio", {}).get("output", {})
        return ResponseContext(
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

    def _start_response(self, params: dict[str, Any], *, source_event: str) -> None:
        out_of_band = params.get("conversation") == "none"
        if not out_of_band:
            self._out.append(DisarmIdle())
        ctx = self._context(params, out_of_band)
        plan = self.brain.plan(
            instructions=params.get("instructions"),
            out_of_band=out_of_band,
            items=self.conversation.items,
            tools=params.get("tools", self.config.tools),
            tool_choice=params.get("tool_choice", self.config.session["tool_choice"]),
        )
        self._out.append(Note(f"{ctx.response_id} ({source_event}) answered by {plan.source}"))
        self._out.extend(Note(f"{ctx.response_id}: {text}") for text in plan.notes)
        run = ResponseRun(
            ctx, plan, conversation=None if out_of_band else self.conversation, ids=self.ids
        )
        self.runs[run.id] = run
        if not out_of_band:
            self.active = run
        self._out.append(StartResponse(run, plan.faults))


Handler = Callable[[ProtocolCore, dict[str, Any]], None]

HANDLERS: dict[str, Handler] = {
    "session.update": ProtocolCore._session_update,
    "input_audio_buffer.append": ProtocolCore._append,
    "input_audio_buffer.commit": ProtocolCore._commit_buffer,
    "input_audio_buffer.clear": ProtocolCore._clear_buffer,
    "output_audio_buffer.clear": ProtocolCore._clear_output,
    "conversation.item.create": ProtocolCore._create_item,
    "conversation.item.retrieve": ProtocolCore._retrieve_item,
    "conversation.item.truncate": ProtocolCore._truncate_item,
    "conversation.item.delete": ProtocolCore._delete_item,
    "response.create": ProtocolCore._create_response,
    "response.cancel": ProtocolCore._cancel_response,
}
"""The dispatch table: every client event type (see :data:`envelope.CLIENT_KEYS`) -> handler."""
assert set(HANDLERS) == set(envelope.CLIENT_KEYS)
