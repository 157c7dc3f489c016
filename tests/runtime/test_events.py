"""The session's event log is bounded; subscribers still see every event."""

from __future__ import annotations

from vocalis.runtime.events import AgentStateChanged, EventEmitter


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
