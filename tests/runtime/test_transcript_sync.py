"""Words reach the text sink as their audio plays, never ahead of it."""

from __future__ import annotations

import asyncio
import gc
import weakref

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


async def test_with_word_timings_the_text_stops_at_the_last_heard_word() -> None:
    """espeak word timings: the shown text is the timed heard prefix, never ahead of it."""
    from vocalis.audio.espeak import synthesize

    clock = ManualClock()
    sink = ClockedAudioSink(clock)
    texts = MemoryTextSink()
    clip = synthesize("The quick brown fox jumps over the lazy dog.", sample_rate=24000)
    segment = sink.begin_segment("m1", 24000)
    sync = TranscriptSync("m1", texts, clock, interval=0.02)
    # The whole transcript arrives first (as providers send it), then the audio.
    sync.add_text(clip.text)
    sync.text_complete = True
    sync.word_timings = clip.words
    segment.push(clip.samples)
    segment.end()
    sync.audio_ms, sync.audio_complete = clip.duration_ms, True
    task = asyncio.create_task(sync.follow(segment))
    await settle()
    assert texts.agent_texts.get("m1", "") == ""  # nothing played yet, nothing shown
    await clock.run_until(clip.duration_ms / 2000, step=0.02)
    shown = texts.agent_texts["m1"]
    heard_now = heard_prefix(
        clip.text, segment.played_ms, clip.duration_ms, word_timings=clip.words
    )
    assert shown and heard_now.startswith(shown)
    assert len(heard_now.split()) - len(shown.split()) <= 1  # at most one poll behind
    sink.clear()
    await task
    result = await segment.wait_for_playout()
    sync.finish(result)
    assert result.status is PlayoutStatus.PARTIAL
    assert texts.agent_texts["m1"] == shown
    truth = len(clip.text_heard(result.played_ms).split())
    assert abs(len(shown.split()) - truth) <= 1
    await sink.aclose()


async def test_full_segment_releases_everything_skipped_releases_nothing() -> None:
    clock = ManualClock()
    sink = ClockedAudioSink(clock)
    texts = MemoryTextSink()
    syncs = []
    for sid in ("a", "b"):
        segment = sink.begin_segment(sid, 24000)
        segment.push(np.full(24000, 1000, dtype=np.int16))
        segment.end()
        sync = TranscriptSync(sid, texts, clock, interval=0.05)
        sync.add_text("Hello there friend")
        sync.audio_ms, sync.audio_complete, sync.text_complete = 1000.0, True, True
        syncs.append((sync, segment, asyncio.create_task(sync.follow(segment))))
    await clock.run_until(0.99, step=0.01)  # a played (last frame at 0.98), b not started
    sink.clear()
    for sync, segment, task in syncs:
        await task
        sync.finish(await segment.wait_for_playout())
    assert (await syncs[0][1].wait_for_playout()).status is PlayoutStatus.FULL
    assert (await syncs[1][1].wait_for_playout()).status is PlayoutStatus.SKIPPED
    assert texts.agent_texts["a"] == "Hello there friend"
    assert "b" not in texts.agent_texts
    await sink.aclose()


async def test_a_cancelled_follow_is_freed_without_the_cyclic_collector() -> None:
    """`wait_played` cancels a follow still running; its CancelledError keeps the follow's
    frame, which must not hold the task itself (a cycle: the response it belongs to would
    wait for the collector instead of being freed when it settles)."""
    clock = ManualClock()
    sink = ClockedAudioSink(clock)
    segment = sink.begin_segment("a", 24000)
    segment.push(np.full(24000, 1000, dtype=np.int16))
    segment.end()
    sync = TranscriptSync("a", MemoryTextSink(), clock, interval=0.05)
    sync.add_text(TEXT)
    sync.audio_ms, sync.audio_complete, sync.text_complete = 1000.0, True, True
    gc.collect()
    gc.disable()
    try:
        task = asyncio.create_task(sync.follow(segment))
        await settle()
        await clock.advance(0.1)
        task.cancel()
        await asyncio.wait({task})
        assert task.cancelled()
        follow = weakref.ref(task)
        del task
        assert follow() is None
    finally:
        gc.enable()
    await sink.aclose()
