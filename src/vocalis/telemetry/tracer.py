"""`CallTracer`: one call's OpenTelemetry spans, built from the session's typed events.

Why an observer: the runtime already reports every fact a trace needs as an event (states,
responses, playout verdicts, tool calls, barge-ins, watchdog firings, reconnects) — stamped
with the session clock. Building spans from that stream keeps tracing out of the runtime's
decisions (no tracer calls to forget in a new code path) and makes "off" free: with tracing
off no observer is attached and the runtime does exactly what it did before.

The span tree of a call (times from the session clock, see `timebase.py`):

    vocalis.call
    ├── vocalis.provider.connection       (one per provider socket; a reconnect ends it)
    ├── vocalis.provider.reconnect        (the outage between two connections)
    ├── vocalis.user_turn                 (caller speech start → end; or one typed message)
    └── vocalis.response                  (linked to the user turn it answers)
        ├── vocalis.assistant_message     (one per message: generated / played / heard)
        └── vocalis.tool_call             (one per call id)

Barge-ins and stall-watchdog firings are span events on the responses they cut (and the
caller's turn), errors are events on their response or on the call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.util.types import AttributeValue

from vocalis.conversation.items import MessageItem
from vocalis.runtime.events import (
    ConversationItemAdded,
    E,
    ErrorEvent,
    Interrupted,
    MessageMetrics,
    ProviderConnected,
    ProviderReconnected,
    ResponseStarted,
    SessionClosedEvent,
    ToolCallFinished,
    ToolCallStarted,
    TurnMetrics,
    UserStateChanged,
    UserTranscript,
)
from vocalis.telemetry import names as a
from vocalis.telemetry.facts import turn_latency_s
from vocalis.telemetry.names import EventName, SpanName
from vocalis.telemetry.timebase import Timebase
from vocalis.utils.clock import Clock
from vocalis.utils.logsafe import scrub

__all__ = ["CallTracer", "Observable"]

Attributes = dict[str, AttributeValue]

# Interrupt sources that are the caller taking the floor (the rest: the app, a watchdog).
_BARGE_IN_SOURCES = frozenset({"server_vad", "local_vad", "text"})
_WATCHDOG_ACTIONS = {"response_stalled": "cancel", "response_not_acknowledged": "release"}
# Caller turns kept open for a late transcript; older ones are ended (bounded memory).
_MAX_PENDING_TURNS = 8
_MAX_ERROR_CHARS = 300


class Observable(Protocol):
    """What the tracer needs from a session: its clock and typed subscriptions."""

    @property
    def clock(self) -> Clock: ...  # read only: a session with a ManualClock fits

    def on(self, kind: type[E], callback: Callable[[E], None]) -> Callable[[], None]: ...


@dataclass(slots=True)
class _Turn:
    span: Span
    started_at: float
    stopped_at: float | None = None
    item_id: str | None = None


class CallTracer:
    """Spans of one call; `subscribe(session)` before `session.start()`."""

    def __init__(
        self,
        tracer: Tracer,
        clock: Clock,
        *,
        capture_content: bool = False,
        attributes: Attributes | None = None,
    ) -> None:
        self._tracer = tracer
        self._time = Timebase(clock)
        self._content = capture_content
        self.call_span = tracer.start_span(
            SpanName.CALL,
            kind=SpanKind.SERVER,
            start_time=self._time.ns(),
            attributes=attributes,
        )
        self._call_ctx = trace.set_span_in_context(self.call_span)
        self._connection: Span | None = None
        self._connections = 0
        self._speaking: _Turn | None = None
        self._pending: list[_Turn] = []  # speech ended, item or transcript still to come
        self._last_turn: Span | None = None
        self._turns = 0
        self._responses: dict[str, Span] = {}
        self._response_count = 0
        self._tools: dict[str, Span] = {}
        self._heard: dict[str, str] = {}  # assistant item id -> heard text, until its metrics
        self._closed = False

    @property
    def trace_id(self) -> str:
        return trace.format_trace_id(self.call_span.get_span_context().trace_id)

    @property
    def context(self) -> Context:
        """The call span as the current span (for logs and the app's own spans)."""
        return self._call_ctx

    def subscribe(self, session: Observable) -> None:
        session.on(ProviderConnected, self._connected)
        session.on(ProviderReconnected, self._reconnected)
        session.on(UserStateChanged, self._user_state)
        session.on(ConversationItemAdded, self._item_added)
        session.on(UserTranscript, self._transcript)
        session.on(ResponseStarted, self._response_started)
        session.on(ToolCallStarted, self._tool_started)
        session.on(ToolCallFinished, self._tool_finished)
        session.on(Interrupted, self._interrupted)
        session.on(ErrorEvent, self._error)
        session.on(TurnMetrics, self._response_settled)
        session.on(SessionClosedEvent, self._session_closed)

    # ------------------------------------------------------------------ helpers

    def _start(
        self,
        name: SpanName,
        at: float | None,
        attributes: Attributes,
        *,
        parent: Context | None = None,
        links: Sequence[Link] = (),
        kind: SpanKind = SpanKind.INTERNAL,
    ) -> Span:
        return self._tracer.start_span(
            name,
            context=parent or self._call_ctx,
            kind=kind,
            attributes=attributes,
            links=links,
            start_time=self._time.ns(at),
        )

    def _end(self, span: Span, at: float | None = None) -> None:
        span.end(end_time=self._time.ns(at))

    # ------------------------------------------------------------------ provider

    def _connected(self, event: ProviderConnected) -> None:
        self.call_span.set_attribute(a.PROVIDER, event.provider)
        self._open_connection(event.at - event.connect_s, {a.CONNECT_MS: event.connect_s * 1e3})

    def _open_connection(self, at: float, attributes: Attributes) -> None:
        self._connections += 1
        attributes[a.CONNECTION_INDEX] = self._connections
        self._connection = self._start(SpanName.CONNECTION, at, attributes, kind=SpanKind.CLIENT)

    def _reconnected(self, event: ProviderReconnected) -> None:
        outage = event.outage_s or 0.0
        dropped_at = event.at - outage
        if self._connection is not None:
            self._connection.set_attribute(a.END_REASON, event.reason)
            self._end(self._connection, dropped_at)
        attributes: Attributes = {
            a.RECONNECT_REASON: event.reason,
            a.REPLAYED_ITEMS: event.replayed_items,
        }
        if event.outage_s is not None:
            attributes[a.OUTAGE_MS] = event.outage_s * 1e3
        self._end(self._start(SpanName.RECONNECT, dropped_at, attributes), event.at)
        self._open_connection(event.at, {})

    # ------------------------------------------------------------------ caller turns

    def _user_state(self, event: UserStateChanged) -> None:
        if event.new == "speaking" and self._speaking is None:
            self._flush_turns(keep_awaited=True)
            self._turns += 1
            attributes: Attributes = {a.TURN_INDEX: self._turns, a.TURN_INPUT: "speech"}
            span = self._start(SpanName.USER_TURN, event.at, attributes)
            self._speaking = _Turn(span, event.at)
            self._last_turn = span
        elif event.new == "listening" and self._speaking is not None:
            turn, self._speaking = self._speaking, None
            turn.stopped_at = event.at
            turn.span.set_attribute(a.SPEECH_MS, (event.at - turn.started_at) * 1e3)
            self._pending.append(turn)
            if len(self._pending) > _MAX_PENDING_TURNS:
                self._end_turn(self._pending.pop(0))

    def _item_added(self, event: ConversationItemAdded) -> None:
        item = event.item
        if not isinstance(item, MessageItem):
            return
        if item.role == "assistant":
            self._heard[item.id] = item.text
            return
        if item.role != "user":
            return
        turn = self._turn_awaiting_item()
        if turn is None:
            self._typed_turn(item)
            return
        turn.item_id = item.id
        turn.span.set_attribute(a.ITEM_ID, item.id)
        if item.text:
            self._set_transcript(turn.span, item.text)

    def _turn_awaiting_item(self) -> _Turn | None:
        for turn in (*reversed(self._pending), self._speaking):
            if turn is not None and turn.item_id is None:
                return turn
        return None

    def _typed_turn(self, item: MessageItem) -> None:
        self._turns += 1
        attributes: Attributes = {
            a.TURN_INDEX: self._turns,
            a.TURN_INPUT: "text",
            a.ITEM_ID: item.id,
        }
        span = self._start(SpanName.USER_TURN, None, attributes)
        self._set_transcript(span, item.text)
        self._last_turn = span
        self._end(span)

    def _transcript(self, event: UserTranscript) -> None:
        if not event.final:
            return
        for turn in (*self._pending, self._speaking):
            if turn is not None and turn.item_id == event.item_id:
                self._set_transcript(turn.span, event.text)
                if turn in self._pending:
                    self._pending.remove(turn)
                    self._end_turn(turn)
                return

    def _set_transcript(self, span: Span, text: str) -> None:
        span.set_attribute(a.TRANSCRIPT_CHARS, len(text))
        if self._content:
            span.set_attribute(a.TRANSCRIPT_TEXT, text)

    def _end_turn(self, turn: _Turn) -> None:
        self._end(turn.span, turn.stopped_at)

    def _flush_turns(self, *, keep_awaited: bool) -> None:
        """End finished caller turns; with `keep_awaited`, those whose transcript may come."""
        keep = [t for t in self._pending if keep_awaited and t.item_id is not None]
        for turn in self._pending:
            if turn not in keep:
                self._end_turn(turn)
        self._pending = keep

    # ------------------------------------------------------------------ responses

    def _response_started(self, event: ResponseStarted) -> None:
        self._response_count += 1
        links = []
        if event.origin in ("server", "reply") and self._last_turn is not None:
            links.append(Link(self._last_turn.get_span_context()))
        attributes: Attributes = {a.RESPONSE_ID: event.response_id, a.ORIGIN: event.origin}
        span = self._start(SpanName.RESPONSE, event.at, attributes, links=links)
        self._responses[event.response_id] = span

    def _response_settled(self, metrics: TurnMetrics) -> None:
        span = self._responses.pop(metrics.response_id, None)
        if span is None:  # began before the tracer was attached
            attributes: Attributes = {a.RESPONSE_ID: metrics.response_id, a.ORIGIN: metrics.origin}
            span = self._start(SpanName.RESPONSE, metrics.created_at, attributes)
        span.set_attributes(_response_attributes(metrics))
        parent = trace.set_span_in_context(span)
        for message in metrics.messages:
            self._message(parent, message, metrics.created_at)
        self._end(span)

    def _message(self, parent: Context, message: MessageMetrics, created_at: float | None) -> None:
        heard = self._heard.pop(message.item_id, "")
        attributes: Attributes = {
            a.ITEM_ID: message.item_id,
            a.GENERATED_MS: round(message.generated_ms, 1),
            a.PLAYED_MS: round(message.played_ms, 1),
            a.HEARD_CHARS: len(heard),
            a.OUTCOME: message.playout,
            a.HISTORY_OP: message.history_op,
        }
        if self._content:
            attributes[a.HEARD_TEXT] = heard
            attributes[a.GENERATED_TEXT] = message.generated_text
        start = message.pulled_at if message.pulled_at is not None else created_at
        span = self._start(SpanName.MESSAGE, start, attributes, parent=parent)
        self._end(span, message.ended_at)

    # ------------------------------------------------------------------ tools

    def _tool_started(self, event: ToolCallStarted) -> None:
        response = self._responses.get(event.response_id or "")
        parent = trace.set_span_in_context(response) if response is not None else None
        attributes: Attributes = {
            a.TOOL_NAME: event.name,
            a.TOOL_CALL_ID: event.call_id,
            a.ARGUMENTS_BYTES: len(event.arguments.encode()),
        }
        if self._content:
            attributes[a.ARGUMENTS_TEXT] = event.arguments
        self._tools[event.call_id] = self._start(
            SpanName.TOOL_CALL, None, attributes, parent=parent
        )

    def _tool_finished(self, event: ToolCallFinished) -> None:
        span = self._tools.pop(event.call_id, None)
        if span is None:
            return
        span.set_attributes(
            {
                a.DURATION_MS: event.duration_s * 1e3,
                a.OUTPUT_BYTES: len(event.output.encode()),
                a.TOOL_ERROR: event.is_error,
            }
        )
        if self._content:
            span.set_attribute(a.OUTPUT_TEXT, event.output)
        if event.is_error:
            span.set_attribute(a.ERROR_TYPE, "tool_error")
            span.set_status(Status(StatusCode.ERROR, "the tool reported an error"))
        self._end(span)

    # ------------------------------------------------------------------ events on spans

    def _interrupted(self, event: Interrupted) -> None:
        name = EventName.BARGE_IN if event.source in _BARGE_IN_SOURCES else EventName.INTERRUPTED
        attributes: Attributes = {a.SOURCE: event.source}
        at = self._time.ns(event.at)
        for response_id in event.response_ids:
            span = self._responses.get(response_id)
            if span is not None:
                span.add_event(name, attributes, timestamp=at)
        if name is EventName.BARGE_IN and self._speaking is not None:
            # The turn that cut in (a typed message's turn is already a finished point).
            self._speaking.span.add_event(name, attributes, timestamp=at)

    def _error(self, event: ErrorEvent) -> None:
        span = self._responses.get(event.response_id or "") or self.call_span
        action = _WATCHDOG_ACTIONS.get(event.code or "")
        if event.source == "watchdog" and action is not None:
            span.add_event(
                EventName.STALL_WATCHDOG, {a.WATCHDOG_ACTION: action}, timestamp=self._time.ns()
            )
            return
        attributes: Attributes = {
            a.ERROR_SOURCE: event.source,
            a.ERROR_RECOVERABLE: event.recoverable,
            a.ERROR_MESSAGE: scrub(event.message)[:_MAX_ERROR_CHARS],
        }
        if event.code is not None:
            attributes[a.ERROR_CODE] = event.code
        if event.operation is not None:
            attributes[a.ERROR_OPERATION] = event.operation
        span.add_event(EventName.ERROR, attributes, timestamp=self._time.ns())
        if not event.recoverable:
            self.call_span.set_status(Status(StatusCode.ERROR, event.code or "fatal error"))

    # ------------------------------------------------------------------ end of call

    def _session_closed(self, event: SessionClosedEvent) -> None:
        if self._closed:
            return
        self._closed = True
        for span in (*self._tools.values(), *self._responses.values()):
            self._end(span)
        self._tools.clear()
        self._responses.clear()
        if self._speaking is not None:
            self._end(self._speaking.span)
            self._speaking = None
        self._flush_turns(keep_awaited=False)
        if self._connection is not None:
            self._connection.set_attribute(a.END_REASON, event.reason)
            self._end(self._connection)
        self.call_span.set_attributes(
            {
                a.CLOSE_REASON: event.reason,
                a.RESPONSES: self._response_count,
                a.USER_TURNS: self._turns,
                a.RECONNECTS: max(0, self._connections - 1),
            }
        )
        self._end(self.call_span)


def _response_attributes(m: TurnMetrics) -> Attributes:
    attributes: Attributes = {
        a.INTERRUPTED: m.interrupted,
        a.MESSAGES: len(m.messages),
        a.STATUS: m.status or "unknown",
    }
    latency = turn_latency_s(m)
    if latency is not None:
        attributes[a.TURN_LATENCY_MS] = latency * 1e3
    if m.voice_to_voice_ms is not None:
        attributes[a.VOICE_TO_VOICE_MS] = m.voice_to_voice_ms
    if m.time_to_first_audio_ms is not None:
        attributes[a.TIME_TO_FIRST_AUDIO_MS] = m.time_to_first_audio_ms
    return attributes
