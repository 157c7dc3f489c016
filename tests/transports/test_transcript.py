"""heard_prefix and the transcript synchronizer: text follows the played audio."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass

import numpy as np

from vocalis.transports.base import PlayoutResult, PlayoutStatus
from vocalis.transports.clocked import ClockedAudioSink
from vocalis.transports.memory import MemoryTextSink
from vocalis.transports.transcript import (
    TranscriptSynchronizer,
    heard_prefix,
)
from vocalis.utils.clock import ManualClock, settle


@dataclass(frozen=True)
class Timing:
    start_ms: float
    end_ms: float


TEXT = "One, two, three, four, five."


def test_with_word_timings_a_word_counts_once_its_middle_played() -> None:
    timings = [Timing(0, 300), Timing(400, 700), Timing(800, 1100), Timing(1200, 1500)]
    text = "alpha beta  gamma delta"
    assert heard_prefix(text, 0, 1600, timings) == ""
    assert heard_prefix(text, 149, 1600, timings) == ""
    assert heard_prefix(text, 150, 1600, timings) == "alpha"
    assert heard_prefix(text, 950, 1600, timings) == "alpha beta  gamma"  # spacing kept
    assert heard_prefix(text, 1600, 1600, timings) == text
    assert heard_prefix(text, 1000, None, timings) == "alpha beta  gamma"


def test_estimate_spreads_words_over_the_known_total() -> None:
    assert heard_prefix(TEXT, 2500, 2500) == TEXT
    assert heard_prefix(TEXT, 0, 2500) == ""
    assert heard_prefix(TEXT, 1250, 2500) in {"One, two,", "One, two, three,"}
    # Monotonic in the played position.
    prefixes = [heard_prefix(TEXT, ms, 2500) for ms in range(0, 2600, 50)]
    assert all(b.startswith(a) for a, b in itertools.pairwise(prefixes))


def test_estimate_without_total_uses_speaking_rate() -> None:
    # 55 ms per character: the middle of "One," (chars 0-4) is at 110 ms.
    assert heard_prefix(TEXT, 100, None) == ""
    assert heard_prefix(TEXT, 120, None) == "One,"
    assert heard_prefix(TEXT, 60_000, None) == TEXT
    assert heard_prefix("   ", 1000, 1000) == ""
    assert heard_prefix("padded words ", 10_000, 10_000) == "padded words"


def test_heard_prefix_is_within_one_word_of_espeak_truth() -> None:
    from vocalis.audio.espeak import synthesize

    clip = synthesize("Counting slowly: one, two, three, four, five, six, seven, eight.")
    for played in np.linspace(0, clip.duration_ms, 23):
        truth = len(clip.text_heard(float(played)).split())
        for timings in (None, clip.words):
            heard = heard_prefix(clip.text, float(played), clip.duration_ms, timings)
            assert clip.text.startswith(heard)
            assert abs(len(heard.split()) - truth) <= 1, (played, truth, heard)


async def test_synchronizer_releases_words_as_audio_plays() -> None:
    from vocalis.audio.espeak import synthesize

    clock = ManualClock()
    sink = ClockedAudioSink(clock, 24000, 20)
    text_sink = MemoryTextSink()
    clip = synthesize("The quick brown fox jumps over the lazy dog.", sample_rate=24000)
    seg = sink.begin_segment("m1", 24000)
    sync = TranscriptSynchronizer(seg, text_sink, clock)
    # The whole transcript arrives first (as providers do), then the audio.
    sync.push_text(clip.text)
    sync.end_text()
    sync.set_word_timings(clip.words)
    seg.push(clip.samples)
    sync.push_audio_ms(clip.duration_ms)
    seg.end()
    sync.end_audio()
    task = asyncio.create_task(sync.run())
    await settle()
    assert text_sink.agent_texts.get("m1", "") == ""  # nothing heard yet
    half = clip.duration_ms / 2000
    await clock.run_until(half, step=0.02)
    shown = text_sink.agent_texts["m1"]
    assert clip.text.startswith(shown)
    assert shown == heard_prefix(clip.text, seg.played_ms, clip.duration_ms, clip.words)
    sink.clear()
    heard = await task
    result = await seg.wait_for_playout()
    assert heard == heard_prefix(clip.text, result.played_ms, clip.duration_ms, clip.words)
    assert abs(len(heard.split()) - len(clip.text_heard(result.played_ms).split())) <= 1
    assert text_sink.agent_texts["m1"] == heard  # the UI stops at the last heard word
    verdict = text_sink.verdict("m1")
    assert verdict.heard_text == heard and verdict.result.status is PlayoutStatus.PARTIAL


async def test_synchronizer_full_and_skipped() -> None:
    clock = ManualClock()
    sink = ClockedAudioSink(clock, 24000, 20)
    text_sink = MemoryTextSink()
    a = sink.begin_segment("a", 24000)
    b = sink.begin_segment("b", 24000)
    sa, sb = (TranscriptSynchronizer(s, text_sink, clock) for s in (a, b))
    for s, seg in ((sa, a), (sb, b)):
        s.push_text("Hello there friend")
        s.end_text()
        seg.push(np.zeros(24000, dtype=np.int16))
        s.push_audio_ms(1000)
        seg.end()
        s.end_audio()
    ta, tb = asyncio.create_task(sa.run()), asyncio.create_task(sb.run())
    await clock.run_until(1.1, step=0.02)
    sink.clear()
    assert await ta == "Hello there friend"
    heard_b = await tb
    assert heard_b in {"", "Hello"}  # 80 ms of b played at most: nothing complete
    assert text_sink.agent_texts["a"] == "Hello there friend"
    assert [v.segment_id for v in text_sink.verdicts] == ["a", "b"]


def test_finish_is_idempotent_and_skipped_is_empty() -> None:
    async def go() -> None:
        clock = ManualClock()
        sink = ClockedAudioSink(clock)
        seg = sink.begin_segment("x", 24000)
        text_sink = MemoryTextSink()
        sync = TranscriptSynchronizer(seg, text_sink, clock)
        sync.push_text("never heard")
        result = PlayoutResult("x", PlayoutStatus.SKIPPED, 0.0, 500.0)
        assert sync.finish(result) == ""
        assert sync.finish(result) == ""
        assert len(text_sink.verdicts) == 1
        assert "x" not in text_sink.agent_texts

    asyncio.run(go())
