"""The session's event log is bounded (by count and bytes); subscribers still see every event."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from vocalis.runtime.events import (
    AgentStateChanged,
    EventEmitter,
    SessionEvent,
    UserTranscript,
    event_bytes,
)
from vocalis.runtime.options import AgentSessionOptions


def test_log_keeps_the_most_recent_events_and_callbacks_see_all() -> None:
    emitter = EventEmitter(log_limit=3)
    seen: list[float] = []
    emitter.on(AgentStateChanged, lambda e: seen.append(e.at))
    for i in range(10):
        emitter.emit(AgentStateChanged("listening", "thinking", float(i)))
    assert [e.at for e in emitter.log if isinstance(e, AgentStateChanged)] == [7.0, 8.0, 9.0]
    assert seen == [float(i) for i in range(10)]


def test_unbounded_log_when_asked() -> None:
    emitter = EventEmitter(log_limit=None)
    for i in range(5000):
        emitter.emit(AgentStateChanged("listening", "thinking", float(i)))
    assert len(emitter.log) == 5000


_EVENTS = st.one_of(
    st.builds(
        AgentStateChanged,
        st.just("listening"),
        st.just("thinking"),
        st.floats(0, 1e6, allow_nan=False),
    ),
    st.builds(UserTranscript, st.just("item_1"), st.text(max_size=2000), st.booleans()),
)


@settings(max_examples=200, deadline=None)
@given(events=st.lists(_EVENTS, max_size=80), max_bytes=st.integers(1, 20_000))
def test_byte_bound_keeps_the_newest_suffix_within_the_bound(
    events: list[SessionEvent], max_bytes: int
) -> None:
    """Whatever is emitted, the log is the newest events, in order, within `max_bytes`.

    One event larger than the whole bound is still kept alone (the newest event is never lost).
    """
    emitter = EventEmitter(log_limit=None, log_bytes=max_bytes)
    for event in events:
        emitter.emit(event)
    kept = list(emitter.log)
    assert kept == events[len(events) - len(kept) :]
    size = sum(event_bytes(e) for e in kept)
    assert size == emitter.log.bytes
    assert size <= max_bytes or len(kept) == 1
    if len(kept) < len(events):  # nothing more would have fitted
        assert size + event_bytes(events[-len(kept) - 1]) > max_bytes


def test_a_long_call_holds_a_bounded_log() -> None:
    """Ten thousand events (over an hour of conversation) keep the default bound's worth."""
    options = AgentSessionOptions()
    emitter = EventEmitter(options.event_log_limit, options.event_log_bytes)
    for i in range(10_000):
        emitter.emit(AgentStateChanged("listening", "thinking", float(i)))
        emitter.emit(UserTranscript(f"item_{i}", "what about the opening hours on sunday", True))
    assert options.event_log_bytes is not None
    assert emitter.log.bytes <= options.event_log_bytes
    assert 50 < len(emitter.log) < 1_000
