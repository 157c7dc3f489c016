"""The call report's turn metrics are bounded however many responses a call has (#14).

Every settled response used to leave its `SavedTurn` in the session until the call ended. The
record keeps the most recent turns in full and exact aggregates over all of them: checked
here against the plain list it replaced.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vocalis.runtime.events import SavedMessage, SavedTurn
from vocalis.runtime.turn_record import TurnRecord

latency = st.none() | st.floats(0, 10_000, allow_nan=False)
message = st.builds(
    SavedMessage,
    st.text(max_size=4),
    st.floats(0, 5_000),
    st.sampled_from([0.0, 120.0]),
    st.sampled_from(["full", "cut", "skipped"]),
    st.text(max_size=8),
)
turn = st.builds(
    SavedTurn,
    st.text(max_size=4),
    st.sampled_from(["server", "reply"]),
    latency,
    latency,
    latency,
    st.booleans(),
    st.none() | st.just("completed"),
    st.lists(message, max_size=3).map(tuple),
)


def stats(values: list[float | None]) -> dict[str, object]:
    present = [v for v in values if v is not None]
    if not present:
        return {"count": 0}
    return {
        "count": len(present),
        "mean_ms": round(sum(present) / len(present), 1),
        "min_ms": round(min(present), 1),
        "max_ms": round(max(present), 1),
    }


@settings(max_examples=200, deadline=None)
@given(st.lists(turn, max_size=60), st.integers(1, 20))
def test_recent_turns_whole_and_every_turn_in_the_aggregates(
    turns: list[SavedTurn], keep: int
) -> None:
    record = TurnRecord(keep)
    for t in turns:
        record.add(t)
    assert record.recent_json() == [t.to_json() for t in turns[-keep:]]
    messages = [m for t in turns for m in t.messages]
    summary = record.summary_json()
    assert summary == {
        "turns": len(turns),
        "turns_kept": min(keep, len(turns)),
        "interrupted": sum(t.interrupted for t in turns),
        "messages": len(messages),
        "never_played": len([m for m in messages if not m.played_ms and m.playout != "full"]),
        "voice_to_voice_ms": stats([t.voice_to_voice_ms for t in turns]),
        "time_to_first_audio_ms": stats([t.time_to_first_audio_ms for t in turns]),
        "playback_latency_ms": stats([t.playback_latency_ms for t in turns]),
    }
    assert record.dropped == max(0, len(turns) - keep)


def test_a_record_must_keep_something() -> None:
    with pytest.raises(ValueError):
        TurnRecord(0)
