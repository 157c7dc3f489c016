"""Words reach the text sink as their audio plays, never ahead of it."""

from __future__ import annotations

import asyncio

import numpy as np

from vocalis.conversation.heard import heard_prefix
from vocalis.runtime.transcript import TranscriptSync
from vocalis.transports.base import PlayoutStatus
from vocalis.transports.clocked import ClockedAudioSink
from vocalis.transports.memory import MemoryTextSink
from vocalis.utils.clock import ManualClock, settle

TEXT = "one two three four five six seven eight nine ten"


async def test_words_follow_the_playback_position() -> None:
    clock = ManualClock()
    sink = ClockedAudioSink(clock)
    texts = MemoryTextSink()
    segment = sink.begin_segment("a", 24000)
    segment.push(np.full(24000, 1000, dtype=np.int16))  # 1 s
    segment.end()
    sync = TranscriptSync("a", texts, clock, interval=0.05)
    sync.add_text(TEXT)
    sync.audio_ms, sync.audio_complete, sync.text_complete = 1000.0, True, True
    task = asyncio.create_task(sync.follow(segment))
    await settle()
    for _ in range(25):
        await clock.advance(0.02)
    shown = texts.agent_texts.get("a", "")
    assert shown == sync.released
    # At ~0.5 s (released on a 50 ms poll): the prefix for a position between 400 and 520 ms.
    assert heard_prefix(TEXT, 400, 1000) <= shown or shown.startswith(heard_prefix(TEXT, 400, 1000))
    assert TEXT.startswith(shown) and len(shown.split()) <= len(
        heard_prefix(TEXT, 520, 1000).split()
    )
    sink.clear()
    await task
    result = await segment.wait_for_playout()
    sync.finish(result)
    assert result.status is PlayoutStatus.PARTIAL
    assert texts.agent_texts["a"] == shown  # an interrupted segment releases nothing more
    await sink.aclose()


async def test_a_word_still_streaming_is_held_back() -> None:
    clock = ManualClock()
    sink = ClockedAudioSink(clock)
    texts = MemoryTextSink()
    segment = sink.begin_segment("b", 24000)
    segment.push(np.full(48000, 1000, dtype=np.int16))
    sync = TranscriptSync("b", texts, clock, interval=0.05)
    sync.add_text("hello wea")
    sync.audio_ms = 100.0  # little audio so far, all of it played soon
    task = asyncio.create_task(sync.follow(segment))
    await settle()
    for _ in range(20):
        await clock.advance(0.02)
    assert texts.agent_texts.get("b", "") == "hello"
    sync.add_text("ther")
    sync.text_complete = True
    for _ in range(15):  # the estimate spreads 13 characters over ~715 ms
        await clock.advance(0.02)
    assert texts.agent_texts["b"] == "hello weather"
    sink.clear()
    await task
    await sink.aclose()
