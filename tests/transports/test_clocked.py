"""ClockedAudioSink under a ManualClock: played positions are exact, frame by frame."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from vocalis.audio.frame import Int16Array
from vocalis.transports.base import PlayoutStatus
from vocalis.transports.clocked import ClockedAudioSink
from vocalis.utils.clock import ManualClock, settle

RATE = 24000


def ms(n: float) -> Int16Array:
    """`n` ms of a ramp (distinct values so recordings can be checked sample by sample)."""
    count = round(n * RATE / 1000)
    return (np.arange(count) % 30000).astype(np.int16)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


async def test_full_segment_plays_at_real_time_pace(clock: ManualClock) -> None:
    sink = ClockedAudioSink(clock, RATE, 20)
    seg = sink.begin_segment("a", RATE)
    audio = ms(1000)
    for chunk in np.array_split(audio, 7):  # irregular provider chunks
        seg.push(chunk)
    seg.end()
    await settle()
    assert seg.started.done() and seg.started.result() == 0.0
    await clock.advance(0.98)
    assert not seg.done  # last frame (0.98..1.0) is still playing
    await clock.advance(0.02)
    result = await seg.wait_for_playout()
    assert result.status is PlayoutStatus.FULL
    assert result.played_ms == 1000.0
    assert result.pushed_ms == 1000.0
    assert result.started_at == 0.0
    assert result.ended_at == pytest.approx(1.0)
    assert sink.underruns == 0
    assert sink.frames_played == 50
    await sink.aclose()


async def test_clear_mid_segment_reports_whole_frames_played(clock: ManualClock) -> None:
    sink = ClockedAudioSink(clock, RATE, 20)
    seg = sink.begin_segment("a", RATE)
    seg.push(ms(1000))
    seg.end()
    await clock.advance(0.49)  # frames at 0.00 .. 0.48 went out: 25 frames
    sink.clear()
    result = await seg.wait_for_playout()
    assert result.status is PlayoutStatus.PARTIAL
    assert result.played_ms == 500.0
    assert result.interrupted
    assert result.ended_at == pytest.approx(0.49)
    await sink.aclose()


@pytest.mark.parametrize(
    ("pushed_ms", "clear_at", "played_ms"),
    [
        # Exactly on a tick: the frame starting at 0.50 went out too.
        pytest.param(1000, 0.5, 520.0, id="exactly-on-tick-counts-that-tick"),
        pytest.param(500, 0.005, 20.0, id="within-first-frame"),
    ],
)
async def test_clear_counts_the_frame_it_lands_in(
    clock: ManualClock, pushed_ms: float, clear_at: float, played_ms: float
) -> None:
    sink = ClockedAudioSink(clock, RATE, 20)
    seg = sink.begin_segment("a", RATE)
    seg.push(ms(pushed_ms))
    await clock.advance(clear_at)
    sink.clear()
    result = await seg.wait_for_playout()
    assert (result.status, result.played_ms) == (PlayoutStatus.PARTIAL, played_ms)


async def test_queued_and_silent_segments_are_skipped(clock: ManualClock) -> None:
    sink = ClockedAudioSink(clock, RATE, 20)
    first = sink.begin_segment("a", RATE)
    first.push(ms(200))
    first.end()
    second = sink.begin_segment("b", RATE)
    second.push(ms(200))
    second.end()
    never = sink.begin_segment("c", RATE)  # announced, no audio yet
    await clock.advance(0.1)
    sink.clear()
    r1, r2, r3 = [await s.wait_for_playout() for s in (first, second, never)]
    assert (r1.status, r1.played_ms) == (PlayoutStatus.PARTIAL, 120.0)
    assert (r2.status, r2.played_ms, r2.pushed_ms) == (PlayoutStatus.SKIPPED, 0.0, 200.0)
    assert (r3.status, r3.played_ms) == (PlayoutStatus.SKIPPED, 0.0)
    assert second.started.cancelled() and never.started.cancelled()
    assert not sink.playing


async def test_push_after_clear_is_dropped(clock: ManualClock) -> None:
    sink = ClockedAudioSink(clock, RATE, 20)
    seg = sink.begin_segment("a", RATE)
    seg.push(ms(100))
    await clock.advance(0.03)
    sink.clear()
    seg.push(ms(100))  # late provider delta after barge-in
    seg.end()
    await clock.advance(0.2)
    result = await seg.wait_for_playout()
    assert result.played_ms == 40.0
    assert sink.frames_played == 2


async def test_back_to_back_segments_share_a_frame(clock: ManualClock) -> None:
    played: list[tuple[str, float, int]] = []
    recorded: list[Int16Array] = []

    def on_frame(samples: Int16Array, segment_id: str, t: float) -> None:
        played.append((segment_id, round(t, 6), samples.shape[0]))
        recorded.append(samples)

    sink = ClockedAudioSink(clock, RATE, 20, on_frame=on_frame)
    a = sink.begin_segment("a", RATE)
    b = sink.begin_segment("b", RATE)
    a_audio, b_audio = ms(30), ms(50) + 7
    a.push(a_audio)
    a.end()
    b.push(b_audio)
    b.end()
    await clock.advance(0.2)
    ra, rb = await a.wait_for_playout(), await b.wait_for_playout()
    assert (ra.status, ra.played_ms) == (PlayoutStatus.FULL, 30.0)
    assert ra.ended_at == pytest.approx(0.03)
    assert (rb.status, rb.played_ms) == (PlayoutStatus.FULL, 50.0)
    assert rb.started_at == pytest.approx(0.03)  # no gap between the messages
    assert rb.ended_at == pytest.approx(0.08)
    assert played == [
        ("a", 0.0, 480),
        ("a", 0.02, 240),
        ("b", 0.03, 240),
        ("b", 0.04, 480),
        ("b", 0.06, 480),
    ]
    assert np.array_equal(np.concatenate(recorded), np.concatenate([a_audio, b_audio]))
    assert sink.frames_played == 4


async def test_underrun_does_not_advance_position(clock: ManualClock) -> None:
    sink = ClockedAudioSink(clock, RATE, 20)
    seg = sink.begin_segment("a", RATE)
    seg.push(ms(30))
    await clock.advance(0.1)  # ticks 0.00 (20) 0.02 (10, short) then 0.04..0.10 starved
    assert seg.played_ms == 30.0
    assert sink.underruns == 5
    assert sink.playing
    seg.push(ms(20))
    seg.end()
    await clock.advance(0.04)
    result = await seg.wait_for_playout()
    assert (result.status, result.played_ms) == (PlayoutStatus.FULL, 50.0)
    assert sink.underruns == 5


async def test_not_started_segment_does_not_tick(clock: ManualClock) -> None:
    sink = ClockedAudioSink(clock, RATE, 20)
    seg = sink.begin_segment("a", RATE)
    await clock.advance(1.0)  # provider is slow to send the first delta
    assert sink.underruns == 0 and not seg.started.done()
    await clock.advance(0.003)
    seg.push(ms(40))
    seg.end()
    await settle()
    assert seg.started.result() == pytest.approx(1.003)  # plays as soon as audio arrives
    await clock.advance(0.04)
    result = await seg.wait_for_playout()
    assert (result.status, result.played_ms) == (PlayoutStatus.FULL, 40.0)


async def test_empty_ended_segment_is_skipped_in_order(clock: ManualClock) -> None:
    sink = ClockedAudioSink(clock, RATE, 20)
    a = sink.begin_segment("a", RATE)
    a.push(ms(40))
    a.end()
    b = sink.begin_segment("b", RATE)  # text-only message: no audio
    b.end()
    await settle()
    assert not b.done  # resolves after a, in playback order
    await clock.advance(0.04)
    assert (await a.wait_for_playout()).status is PlayoutStatus.FULL
    assert (await b.wait_for_playout()).status is PlayoutStatus.SKIPPED


async def test_segment_rate_is_converted_at_the_edge(clock: ManualClock) -> None:
    sink = ClockedAudioSink(clock, RATE, 20)
    seg = sink.begin_segment("a", 16000)
    tone = (np.sin(np.arange(16000) * 0.05) * 8000).astype(np.int16)
    for chunk in np.array_split(tone, 13):
        seg.push(chunk)
    seg.end()
    await clock.advance(1.1)
    result = await seg.wait_for_playout()
    assert result.status is PlayoutStatus.FULL
    assert result.pushed_ms == 1000.0
    assert result.played_ms == pytest.approx(1000.0, abs=0.1)


async def test_clear_after_last_frame_went_out_is_full(clock: ManualClock) -> None:
    sink = ClockedAudioSink(clock, RATE, 20)
    seg = sink.begin_segment("a", RATE)
    seg.push(ms(40))
    seg.end()
    await clock.advance(0.03)  # last frame (0.02..0.04) is in the device
    sink.clear()
    result = await seg.wait_for_playout()
    assert (result.status, result.played_ms) == (PlayoutStatus.FULL, 40.0)


async def test_failing_frame_callback_resolves_waiters(clock: ManualClock) -> None:
    def boom(samples: Int16Array, segment_id: str, t: float) -> None:
        raise OSError("disk full")

    sink = ClockedAudioSink(clock, RATE, 20, on_frame=boom)
    seg = sink.begin_segment("a", RATE)
    seg.push(ms(100))
    await clock.advance(0.05)
    result = await asyncio.wait_for(seg.wait_for_playout(), 1)
    assert result.status is PlayoutStatus.PARTIAL
    with pytest.raises(RuntimeError, match="player failed"):
        await sink.aclose()


async def test_push_validates_format(clock: ManualClock) -> None:
    sink = ClockedAudioSink(clock, RATE, 20)
    seg = sink.begin_segment("a", RATE)
    with pytest.raises(ValueError, match="int16"):
        seg.push(np.zeros(10, dtype=np.float32))
    seg.end()
    with pytest.raises(RuntimeError, match="after end"):
        seg.push(ms(10))
    with pytest.raises(ValueError, match="whole number"):
        ClockedAudioSink(clock, 11025, 20)
    await sink.aclose()


async def test_pause_holds_the_position_and_resume_continues_from_it(clock: ManualClock) -> None:
    """A false interruption: playback holds at the onset and continues with the next sample;
    the segment still ends `full` and the recording has no gap inside the audio."""
    played: list[tuple[int, float]] = []
    sink = ClockedAudioSink(clock, RATE, 20, on_frame=lambda s, _i, t: played.append((len(s), t)))
    seg = sink.begin_segment("a", RATE)
    audio = ms(1000)
    seg.push(audio)
    seg.end()
    await clock.advance(0.49)  # frames at 0.00 .. 0.48
    sink.pause()
    assert sink.paused and seg.played_ms == 500.0
    await clock.advance(0.7)  # paused: nothing plays, the position is frozen
    assert seg.played_ms == 500.0 and not seg.done
    sink.resume()
    await clock.advance(0.48)  # resumed at 1.19: frames at 1.19 .. 1.67
    assert seg.played_ms == 1000.0 and not seg.done
    await clock.advance(0.02)
    result = await seg.wait_for_playout()
    assert result.status is PlayoutStatus.FULL and result.played_ms == 1000.0
    assert sum(n for n, _t in played) == RATE
    assert played[25][1] == pytest.approx(1.19)  # first frame after the pause
    assert sink.underruns == 0
    await sink.aclose()


async def test_clear_while_paused_reports_the_paused_position(clock: ManualClock) -> None:
    """A confirmed interruption after a pause: what was heard is what played before it."""
    sink = ClockedAudioSink(clock, RATE, 20)
    seg = sink.begin_segment("a", RATE)
    later = sink.begin_segment("b", RATE)
    seg.push(ms(1000))
    seg.end()
    later.push(ms(500))
    later.end()
    await clock.advance(0.29)
    sink.pause()
    await clock.advance(0.6)
    sink.clear()
    assert not sink.paused
    first, second = await seg.wait_for_playout(), await later.wait_for_playout()
    assert (first.status, first.played_ms) == (PlayoutStatus.PARTIAL, 300.0)
    assert second.status is PlayoutStatus.SKIPPED
    # The next segment plays normally (clear ended the pause).
    nxt = sink.begin_segment("c", RATE)
    nxt.push(ms(100))
    nxt.end()
    await clock.advance(0.12)
    assert (await nxt.wait_for_playout()).status is PlayoutStatus.FULL
    await sink.aclose()


async def test_pushes_while_paused_do_not_restart_the_device(clock: ManualClock) -> None:
    sink = ClockedAudioSink(clock, RATE, 20)
    seg = sink.begin_segment("a", RATE)
    seg.push(ms(100))
    await clock.advance(0.09)
    sink.pause()
    seg.push(ms(400))  # the provider keeps streaming during the pause
    second = sink.begin_segment("b", RATE)
    second.push(ms(100))
    await clock.advance(1.0)
    assert seg.played_ms == 100.0 and not second.started.done()
    sink.resume()
    seg.end()
    second.end()
    await clock.advance(0.6)
    assert (await seg.wait_for_playout()).played_ms == 500.0
    assert (await second.wait_for_playout()).status is PlayoutStatus.FULL
    await sink.aclose()
