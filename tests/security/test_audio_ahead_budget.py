"""Agent audio held ahead of playback is bounded (issue #14, item 1: one huge audio delta).

A network sink sends agent audio as fast as the provider produces it; the far end plays it at
real time. An hour of audio in one delta (or a far end that never plays) made the call hold
and queue all of it. Now at most `max_audio_ahead_s` is sent-or-held but unplayed; the rest
is dropped, and the segment is never `full` (what was dropped was never heard).
"""

from __future__ import annotations

import json

import numpy as np

from vocalis.transports._web import Outbox
from vocalis.transports.base import PlayoutStatus
from vocalis.transports.playground.sink import PlaygroundAudioSink
from vocalis.transports.twilio import TwilioAudioSink
from vocalis.utils.clock import ManualClock


def drain(outbox: Outbox) -> list[str | bytes]:
    messages: list[str | bytes] = []
    while len(outbox):
        messages.extend(outbox._items)
        outbox._items.clear()
    return messages


async def test_twilio_sink_sends_at_most_the_budget_ahead_of_marks() -> None:
    outbox = Outbox()
    sink = TwilioAudioSink("MZ1", ManualClock(), outbox, max_audio_ahead_s=1.0)
    segment = sink.begin_segment("huge", 24000)
    segment.push(np.full(24000 * 60, 500, dtype=np.int16))  # one minute in one delta
    segment.end()
    sent = [json.loads(m) for m in drain(outbox) if isinstance(m, str)]
    media = [m for m in sent if m["event"] == "media"]
    assert len(media) <= 50  # 1 s of 20 ms frames (+ nothing more)
    for mark in [m for m in sent if m["event"] == "mark"]:  # Twilio plays all of it
        sink.on_mark(mark["mark"]["name"])
    result = await segment.wait_for_playout()
    assert result.status is PlayoutStatus.PARTIAL
    assert result.played_ms <= 1000.0 and result.pushed_ms == 60_000.0


async def test_playground_sink_sends_at_most_the_budget_ahead_of_reports() -> None:
    outbox = Outbox()
    sink = PlaygroundAudioSink(outbox, ManualClock(), 24000, max_audio_ahead_s=1.0)
    segment = sink.begin_segment("huge", 24000)
    segment.push(np.full(24000 * 60, 500, dtype=np.int16))
    segment.end()
    audio = sum(len(m) - 4 for m in drain(outbox) if isinstance(m, bytes)) // 2
    assert audio <= 24000  # one second
    sink.on_started(1)
    sink.on_done(1, audio)  # the page played everything it got
    result = await segment.wait_for_playout()
    assert result.status is PlayoutStatus.PARTIAL and result.played_ms <= 1000.0


async def test_audio_within_the_budget_is_untouched() -> None:
    outbox = Outbox()
    sink = TwilioAudioSink("MZ1", ManualClock(), outbox, max_audio_ahead_s=2.0)
    segment = sink.begin_segment("short", 8000)
    segment.push(np.full(8000, 500, dtype=np.int16))
    segment.end()
    sent = [json.loads(m) for m in drain(outbox) if isinstance(m, str)]
    for mark in [m for m in sent if m["event"] == "mark"]:
        sink.on_mark(mark["mark"]["name"])
    result = await segment.wait_for_playout()
    assert result.status is PlayoutStatus.FULL and result.played_ms == 1000.0
