"""Transcript followers share one poll timer per clock; a broken one fails alone."""

from __future__ import annotations

import asyncio
import gc
import weakref

import numpy as np
import pytest

from vocalis.runtime.follow_ticker import follow_ticker
from vocalis.runtime.transcript import TranscriptSync
from vocalis.transports.base import TextSink
from vocalis.transports.clocked import ClockedAudioSink
from vocalis.transports.memory import MemoryTextSink
from vocalis.utils.clock import ManualClock, MonotonicClock, settle

TICKER_TASK = "vocalis:transcript-ticker"


def _ticker_tasks() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t.get_name() == TICKER_TASK]


async def test_real_clocks_share_a_ticker_other_clocks_have_their_own() -> None:
    assert follow_ticker(MonotonicClock(), 0.1) is follow_ticker(MonotonicClock(), 0.1)
    assert follow_ticker(MonotonicClock(), 0.1) is not follow_ticker(MonotonicClock(), 0.05)
    assert follow_ticker(ManualClock(), 0.1) is not follow_ticker(ManualClock(), 0.1)


async def test_sessions_on_one_clock_are_polled_by_one_timer_that_ends_with_them() -> None:
    clock = ManualClock()
    sink = ClockedAudioSink(clock)
    texts = MemoryTextSink()
    follows = []
    for sid in ("a", "b", "c"):
        segment = sink.begin_segment(sid, 24000)
        segment.push(np.full(24000, 1000, dtype=np.int16))  # 1 s each, back to back
        segment.end()
        sync = TranscriptSync(sid, texts, clock, interval=0.05)
        sync.add_text("one two three four")
        sync.audio_ms, sync.audio_complete, sync.text_complete = 1000.0, True, True
        follows.append((sync, segment, asyncio.create_task(sync.follow(segment))))
    await clock.run_until(0.5, step=0.02)
    ticker = follow_ticker(clock, 0.05)
    assert len(ticker) == 1  # only the playing segment is followed (b, c not started)
    assert len(_ticker_tasks()) == 1
    assert texts.agent_texts["a"].startswith("one two")
    await clock.run_until(3.1, step=0.02)
    for sync, segment, task in follows:
        await task
        sync.finish(await segment.wait_for_playout())
        assert texts.agent_texts[sync.segment_id] == "one two three four"
    await settle()
    assert len(follow_ticker(clock, 0.05)) == 0
    assert _ticker_tasks() == []  # the timer ended with its last follower
    await sink.aclose()


class _BrokenScreen(TextSink):
    """A text sink that fails on the first word it is shown."""

    def agent_text(self, segment_id: str, text: str) -> None:
        raise ConnectionError("screen gone")


async def test_a_failing_follower_fails_alone() -> None:
    clock = ManualClock()
    sink = ClockedAudioSink(clock)
    good_texts = MemoryTextSink()
    broken = TranscriptSync("x", _BrokenScreen(), clock, interval=0.05)
    good = TranscriptSync("x", good_texts, clock, interval=0.05)
    segment = sink.begin_segment("x", 24000)
    segment.push(np.full(24000, 1000, dtype=np.int16))
    segment.end()
    for sync in (broken, good):
        sync.add_text("one two three four")
        sync.audio_ms, sync.audio_complete, sync.text_complete = 1000.0, True, True
    broken_task = asyncio.create_task(broken.follow(segment))
    good_task = asyncio.create_task(good.follow(segment))
    await clock.run_until(0.5, step=0.02)
    assert broken_task.done()
    with pytest.raises(ConnectionError, match="screen gone"):
        broken_task.result()
    assert not good_task.done()
    shown_at_half = good_texts.agent_texts["x"]
    await clock.run_until(0.9, step=0.02)
    assert len(good_texts.agent_texts["x"]) > len(shown_at_half)  # still polled
    sink.clear()
    await good_task
    await settle()
    assert _ticker_tasks() == []
    await sink.aclose()


async def test_a_cancelled_follower_leaves_the_ticker() -> None:
    clock = ManualClock()
    sink = ClockedAudioSink(clock)
    segment = sink.begin_segment("c", 24000)
    segment.push(np.full(48000, 1000, dtype=np.int16))
    sync = TranscriptSync("c", MemoryTextSink(), clock, interval=0.05)
    sync.add_text("one two")
    task = asyncio.create_task(sync.follow(segment))
    await clock.run_until(0.2, step=0.02)
    assert len(follow_ticker(clock, 0.05)) == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await settle()
    assert len(follow_ticker(clock, 0.05)) == 0
    assert _ticker_tasks() == []
    sink.clear()
    await sink.aclose()


class _CancellingScreen(MemoryTextSink):
    """Shows words and, on the first, cancels another follower (mid-tick)."""

    def __init__(self) -> None:
        super().__init__()
        self.victim: asyncio.Task[None] | None = None

    def agent_text(self, segment_id: str, text: str) -> None:
        super().agent_text(segment_id, text)
        if self.victim is not None:
            self.victim.cancel()
            self.victim = None


async def test_a_follower_cancelled_mid_tick_is_not_polled_again() -> None:
    """A follower cancelled by something earlier in the same tick shows no more words, as if
    its own timer had been cancelled."""
    clock = ManualClock()
    sink = ClockedAudioSink(clock)
    segment = sink.begin_segment("q", 24000)
    segment.push(np.full(24000, 1000, dtype=np.int16))
    segment.end()
    first_screen, second_screen = _CancellingScreen(), MemoryTextSink()
    first = TranscriptSync("q", first_screen, clock, interval=0.05)
    second = TranscriptSync("q", second_screen, clock, interval=0.05)
    for sync in (first, second):
        sync.add_text("one two three four five six seven eight")
        sync.audio_ms, sync.audio_complete, sync.text_complete = 1000.0, True, True
    first_task = asyncio.create_task(first.follow(segment))
    second_task = asyncio.create_task(second.follow(segment))
    first_screen.victim = second_task
    await clock.run_until(0.5, step=0.01)
    assert first_screen.agent_texts["q"]  # the first follower released words
    assert second_task.cancelled()
    assert second_screen.agent_texts.get("q", "") == ""  # polled after the cancel: nothing
    sink.clear()
    await first_task
    await sink.aclose()


class _FailingClock(ManualClock):
    """A clock whose timer breaks: the third sleep raises."""

    def __init__(self) -> None:
        super().__init__()
        self.sleeps = 0

    async def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        if self.sleeps == 3:
            raise OSError("timer gone")
        await super().sleep(seconds)


async def test_a_failing_clock_fails_every_follower_and_ends_the_ticker() -> None:
    """The shared timer is each follower's timer: when it breaks, every follow fails with
    its error (none waits forever), and the broken ticker is dropped for the next ones."""
    clock = _FailingClock()
    sink = ClockedAudioSink(clock)
    segment = sink.begin_segment("f", 24000)
    segment.push(np.full(48000, 1000, dtype=np.int16))
    segment.end()
    syncs = [TranscriptSync("f", MemoryTextSink(), clock, interval=0.05) for _ in range(2)]
    tasks = []
    for sync in syncs:
        sync.add_text("one two three four")
        sync.audio_ms, sync.audio_complete, sync.text_complete = 2000.0, True, True
        tasks.append(asyncio.create_task(sync.follow(segment)))
    await clock.run_until(0.3, step=0.02)
    for task in tasks:
        assert task.done()
        with pytest.raises(OSError, match="timer gone"):
            task.result()
    await settle()
    assert len(follow_ticker(clock, 0.05)) == 0
    assert _ticker_tasks() == []
    sink.clear()
    await sink.aclose()


async def test_a_ticker_dropped_by_its_last_follower_is_freed_without_the_collector() -> None:
    """When every session's followers leave at once (a lockstep response boundary), the
    dropped ticker must go by reference counting, not wait in a cycle for the collector."""
    gc.collect()
    gc.disable()
    try:
        ticker = follow_ticker(MonotonicClock(), 0.1)
        dropped = weakref.ref(ticker)

        def poll() -> None:
            pass

        ticker.add(poll)
        ticker.discard(poll)  # the last follower leaves: the ticker is forgotten
        del ticker
        assert dropped() is None
        assert follow_ticker(MonotonicClock(), 0.1) is not None  # a fresh one on demand
    finally:
        gc.enable()
