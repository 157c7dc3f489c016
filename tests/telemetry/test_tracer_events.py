"""`CallTracer` driven by hand-made event sequences: the cases a conformance call does not
reach (typed turns, late transcripts, a burst of turns without items, events after close)."""

from __future__ import annotations

import logging

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from telemetry_support import in_memory_tracing

from vocalis.conversation.items import MessageItem
from vocalis.runtime.events import (
    ConversationItemAdded,
    EventEmitter,
    Interrupted,
    ResponseStarted,
    SessionClosedEvent,
    SessionEvent,
    ToolCallFinished,
    UserStateChanged,
    UserTranscript,
)
from vocalis.telemetry import names as a
from vocalis.telemetry.tracer import CallTracer
from vocalis.utils.clock import ManualClock


class _Session:
    def __init__(self) -> None:
        self.clock = ManualClock()
        self.emitter = EventEmitter()
        self.on = self.emitter.on


def _traced(*, content: bool = False) -> tuple[_Session, InMemorySpanExporter]:
    provider, exporter = in_memory_tracing()
    session = _Session()
    CallTracer(provider.get_tracer("test"), session.clock, capture_content=content).subscribe(
        session
    )
    return session, exporter


def _emit(session: _Session, *events: SessionEvent) -> None:
    for event in events:
        session.emitter.emit(event)


def _turns(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    spans = [s for s in exporter.get_finished_spans() if s.name == "vocalis.user_turn"]
    return sorted(spans, key=lambda s: s.start_time or 0)


def _speak(session: _Session, start: float, stop: float) -> None:
    _emit(
        session,
        UserStateChanged("listening", "speaking", start),
        UserStateChanged("speaking", "listening", stop),
    )


async def test_a_late_transcript_still_reaches_its_turn(caplog: pytest.LogCaptureFixture) -> None:
    session, exporter = _traced(content=True)
    _speak(session, 1.0, 2.5)
    _emit(session, ConversationItemAdded(MessageItem(id="u1", role="user", text="")))
    _speak(session, 4.0, 5.0)  # the next turn starts before u1's transcript arrives
    _emit(session, UserTranscript("u1", "hello there", final=True))
    _emit(session, SessionClosedEvent("closed"))
    first, second = _turns(exporter)
    assert first.attributes is not None
    assert first.attributes[a.ITEM_ID] == "u1"
    assert first.attributes[a.TRANSCRIPT_TEXT] == "hello there"
    assert first.attributes[a.TRANSCRIPT_CHARS] == len("hello there")
    assert first.attributes[a.SPEECH_MS] == pytest.approx(1500.0)
    assert first.end_time is not None and first.start_time is not None
    assert first.end_time - first.start_time == 1_500_000_000  # ends where speech ended
    assert second.attributes is not None and a.ITEM_ID not in second.attributes
    assert "ended span" not in caplog.text


async def test_a_typed_message_is_a_text_turn_and_its_barge_in_stays_on_the_response(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    session, exporter = _traced()
    _emit(
        session,
        ResponseStarted("r1", "say", 0.0),
        ConversationItemAdded(MessageItem(id="t1", role="user", text="stop please")),
        Interrupted("text", ("r1",), 0.1),
        SessionClosedEvent("closed"),
    )
    [turn] = _turns(exporter)
    assert turn.attributes is not None
    assert turn.attributes[a.TURN_INPUT] == "text" and turn.attributes[a.TRANSCRIPT_CHARS] == 11
    assert a.TRANSCRIPT_TEXT not in turn.attributes  # no content without the opt-in
    assert not turn.events
    [response] = [s for s in exporter.get_finished_spans() if s.name == "vocalis.response"]
    assert [e.name for e in response.events] == ["vocalis.barge_in"]
    assert "ended span" not in caplog.text


async def test_turns_waiting_for_a_transcript_are_bounded_and_all_end_on_close() -> None:
    session, exporter = _traced()
    for i in range(20):  # committed turns whose transcripts never come (no transcription)
        _speak(session, float(i), i + 0.5)
        _emit(session, ConversationItemAdded(MessageItem(id=f"u{i}", role="user", text="")))
    assert len(_turns(exporter)) == 12  # at most 8 stay open for a late transcript
    _emit(session, SessionClosedEvent("closed"))
    turns = _turns(exporter)
    assert [t.attributes[a.ITEM_ID] for t in turns if t.attributes] == [f"u{i}" for i in range(20)]
    [call] = [s for s in exporter.get_finished_spans() if s.name == "vocalis.call"]
    assert call.attributes is not None and call.attributes[a.USER_TURNS] == 20


async def test_events_after_close_are_ignored(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    session, exporter = _traced()
    _emit(session, SessionClosedEvent("closed"))
    _emit(
        session,
        ToolCallFinished("c1", "lookup", "{}", False, 0.1, "r1"),
        SessionClosedEvent("closed"),
    )
    assert [s.name for s in exporter.get_finished_spans()] == ["vocalis.call"]
    assert "ended span" not in caplog.text and "on an ended" not in caplog.text
