"""The recorded event log of a call is bounded, whatever the peer sends (issue #14, item 1).

A provider decides how many session events a call produces (caller-transcript deltas, each
re-emitted with the whole text so far); the recorder kept every one until the call ended
(0.8 MB of provider traffic → 298 MB of records). `BoundedEventLog` keeps the first half of
its byte budget, a ring of the most recent half and one `events_dropped` summary between.
"""

from __future__ import annotations

import json
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vocalis.app.reports.event_log import BoundedEventLog
from vocalis.runtime.budget import CallBudget


def transcript_event(n: int, text: str) -> dict[str, object]:
    return {"t": n / 100, "type": "user_transcript", "item_id": "item_u1", "text": text}


@given(
    st.lists(st.tuples(st.integers(0, 3), st.text(max_size=3000)), max_size=400),
    st.integers(1024, 40_000),
)
def test_the_log_stays_within_its_budget_and_keeps_head_and_tail(
    events: list[tuple[int, str]], budget: int
) -> None:
    log = BoundedEventLog(budget, max_string_chars=500)
    appended = [
        {"t": float(k), "type": f"kind{kind}", "text": text}
        for k, (kind, text) in enumerate(events)
    ]
    for record in appended:
        log.append(record)
    kept = log.records()
    real = [r for r in kept if r["type"] != "events_dropped"]
    # Within budget: the estimate, and the JSON really written.
    assert log.bytes <= budget
    assert sum(len(json.dumps(r, ensure_ascii=False)) for r in real) <= budget
    # Order is kept; nothing is invented; dropped + kept = appended.
    times = [r["t"] for r in real]
    assert times == sorted(times)
    summary = [r for r in kept if r["type"] == "events_dropped"]
    dropped = summary[0]["count"] if summary else 0
    assert len(real) + dropped == len(appended)
    if dropped:
        # The gap is one contiguous run: the head is a prefix, the tail a suffix.
        head = [r for r in kept[: kept.index(summary[0])]]
        assert [r["t"] for r in head] == [float(k) for k in range(len(head))]
        tail = kept[kept.index(summary[0]) + 1 :]
        assert [r["t"] for r in tail] == [
            float(k) for k in range(len(appended) - len(tail), len(appended))
        ]


def test_a_transcript_flood_keeps_the_start_the_end_and_a_summary(
    caplog: pytest.LogCaptureFixture,
) -> None:
    budget = CallBudget(max_event_log_bytes=256 * 1024)
    log = BoundedEventLog(budget.max_event_log_bytes)
    text = ""
    with caplog.at_level(logging.WARNING, logger="vocalis.app.events"):
        for n in range(5000):  # each delta re-emitted as the whole text so far
            text += "word "
            log.append(transcript_event(n, text))
    kept = log.records()
    assert log.bytes <= 256 * 1024
    assert kept[0]["text"] == "word "  # how it started
    assert kept[-1]["t"] == 49.99 and str(kept[-1]["text"]).startswith("word word")  # the end
    (summary,) = [r for r in kept if r["type"] == "events_dropped"]
    assert summary["by_type"] == {"user_transcript": summary["count"]}
    assert summary["count"] + len(kept) - 1 == 5000
    # The last record's text was 25,000 characters: cut, with how much was cut.
    assert str(kept[-1]["text"]).endswith("…[+9000 chars]")
    # One warning for the whole call, not one per dropped event.
    assert len([r for r in caplog.records if "event log over" in r.getMessage()]) == 1


def test_budget_values_are_checked() -> None:
    with pytest.raises(ValueError, match="max_event_log_bytes"):
        CallBudget(max_event_log_bytes=0)
    with pytest.raises(ValueError, match="at least 1024"):
        BoundedEventLog(10)
