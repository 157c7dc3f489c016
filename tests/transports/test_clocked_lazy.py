"""A lazy `ClockedAudioSink` (no frame callback) against the frame-by-frame one (hypothesis).

Why: a sink with nothing to hand out per frame plays a run of whole frames in one step and
sleeps until its head segment runs out. The heard contract reads its positions at any instant
(a barge-in's `clear()`, a transcript poll of `played_ms`), so for any segments, pushes, ends,
clears, pauses and clock steps the lazy sink must report exactly what the frame-by-frame sink
(the same class with a frame callback) reports: positions, segment results, counters.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vocalis.audio.frame import Int16Array
from vocalis.transports.base import PlayoutStatus
from vocalis.transports.clocked import ClockedAudioSink, ClockedSegment
from vocalis.utils.clock import ManualClock, MonotonicClock

RATE = 24000
FRAME = 480  # 20 ms


def _ignore(piece: Int16Array, segment_id: str, at: float) -> None:
    """A frame callback that only makes the sink play frame by frame."""


def _segment(
    sink: ClockedAudioSink, segment_id: str, samples: int, *, end: bool = True
) -> ClockedSegment:
    """A segment of `samples` samples of audio, ended unless told otherwise."""
    seg = sink.begin_segment(segment_id, RATE)
    seg.push(np.ones(samples, dtype=np.int16))
    if end:
        seg.end()
    return seg


@dataclass(frozen=True)
class Op:
    kind: str
    arg: float = 0.0


_OPS = st.one_of(
    st.builds(Op, st.just("begin")),
    st.builds(Op, st.just("push"), st.sampled_from([480, 960, 1920, 24000]) | st.integers(1, 3000)),
    st.builds(Op, st.just("end")),
    st.builds(Op, st.just("clear")),
    st.builds(Op, st.just("pause")),
    st.builds(Op, st.just("resume")),
    st.builds(Op, st.just("read")),
    st.builds(
        Op,
        st.just("advance"),
        st.sampled_from([0.001, 0.005, 0.02, 0.03, 0.07, 0.4, 1.3]) | st.floats(0.0, 2.0),
    ),
)


async def _observe(sink: ClockedAudioSink, segments: list[ClockedSegment]) -> tuple[object, ...]:
    """Everything a reader of the sink sees once it is in step with the clock (`sync()`)."""
    sink.sync()
    seen: list[object] = [[seg.played_ms for seg in segments]]
    for seg in segments:
        result = _result(await seg.wait_for_playout()) if seg.done else None
        started: object = None
        if seg.started.cancelled():
            started = "cancelled"  # a segment resolved before its first frame
        elif seg.started.done():
            started = seg.started.result()
        seen.append((started, result))
    seen.append((sink.frames_played, sink.underruns, sink.playing, sink.pending_segments))
    seen.append(sink.paused)
    return tuple(seen)


def _result(result: object) -> tuple[object, ...]:
    return (
        result.status,  # type: ignore[attr-defined]
        result.played_ms,  # type: ignore[attr-defined]
        result.pushed_ms,  # type: ignore[attr-defined]
        result.started_at,  # type: ignore[attr-defined]
        result.ended_at,  # type: ignore[attr-defined]
    )


async def _run(ops: list[Op]) -> None:
    clock = ManualClock()
    eager = ClockedAudioSink(clock, RATE, 20, on_frame=_ignore)
    lazy = ClockedAudioSink(clock, RATE, 20)
    pairs: list[tuple[ClockedSegment, ClockedSegment]] = []
    value = 0
    for op in ops:
        open_pairs = [p for p in pairs if not p[0].done and not p[0].ended]
        if op.kind == "begin":
            pairs.append(
                (
                    eager.begin_segment(f"s{len(pairs)}", RATE),
                    lazy.begin_segment(f"s{len(pairs)}", RATE),
                )
            )
        elif op.kind == "push" and open_pairs:
            n = int(op.arg)
            audio = np.arange(value, value + n, dtype=np.int64).astype(np.int16)
            value += n
            for seg in open_pairs[0]:
                seg.push(audio)
        elif op.kind == "end" and open_pairs:
            for seg in open_pairs[0]:
                seg.end()
        elif op.kind in ("clear", "pause", "resume"):
            for sink in (eager, lazy):
                getattr(sink, op.kind)()
        elif op.kind == "advance":
            await clock.advance(op.arg)
        # Read before anyone catches up, a lazy position is never behind the frame-by-frame
        # sink's (a reader may come before the player task ran) nor ahead of the clock.
        before = [seg.played_ms for seg, _ in pairs]
        read = [seg.played_ms for _, seg in pairs]
        eager.sync()
        after = [seg.played_ms for seg, _ in pairs]
        assert all(b <= r <= a for b, r, a in zip(before, read, after, strict=True)), op
        seen_eager = await _observe(eager, [p[0] for p in pairs])
        seen_lazy = await _observe(lazy, [p[1] for p in pairs])
        assert seen_lazy == seen_eager, op
    await clock.advance(30.0)
    seen_lazy = await _observe(lazy, [p[1] for p in pairs])
    assert seen_lazy == await _observe(eager, [p[0] for p in pairs])
    await eager.aclose()
    await lazy.aclose()
    for eager_seg, lazy_seg in pairs:
        assert _result(await lazy_seg.wait_for_playout()) == _result(
            await eager_seg.wait_for_playout()
        )


@settings(max_examples=150, deadline=None)
@given(ops=st.lists(_OPS, min_size=1, max_size=40))
def test_a_lazy_sink_reports_what_the_frame_by_frame_sink_reports(ops: list[Op]) -> None:
    asyncio.run(_run(ops))


async def test_a_long_segment_is_read_exactly_mid_run() -> None:
    """Between ticks nobody ran, `played_ms` is the frames due by the clock's now."""
    clock = ManualClock()
    sink = ClockedAudioSink(clock, RATE, 20)
    seg = _segment(sink, "s", RATE * 10)
    await clock.advance(0.0)
    assert seg.played_ms == 20.0  # the first frame went out at 0
    await clock.advance(3.215)  # ticks at 0, 20, ..., 3200 ms are due: 161 frames
    assert seg.played_ms == 161 * 20.0
    assert sink.frames_played == 161
    sink.clear()
    result = await seg.wait_for_playout()
    assert result.status is PlayoutStatus.PARTIAL
    assert result.played_ms == 161 * 20.0


async def test_a_lazy_real_time_sink_is_exact_at_a_barge_in() -> None:
    """On the shared ticker a lazy sink sleeps through its run; a clear mid-run still counts
    every frame due at that instant (between what was due just before and just after)."""
    sink = ClockedAudioSink(MonotonicClock(), RATE, 20)
    before_start = time.monotonic()
    seg = _segment(sink, "s", RATE * 5)
    started = await seg.started
    assert before_start <= started
    await asyncio.sleep(0.35)
    low = int((time.monotonic() - started) // 0.02) + 1
    sink.clear()
    high = int((time.monotonic() - started) // 0.02) + 2
    result = await seg.wait_for_playout()
    assert result.status is PlayoutStatus.PARTIAL
    assert low * 20.0 <= result.played_ms <= high * 20.0
    await sink.aclose()


async def test_lazy_real_time_sinks_play_their_segments_to_the_end() -> None:
    """Sleeping sinks wake at their heads' ends: results as the frame-by-frame sinks'."""
    lazy = [ClockedAudioSink(MonotonicClock(), RATE, 20) for _ in range(3)]
    segments = []
    for index, sink in enumerate(lazy):
        for part in ("a", "b"):
            seg = _segment(sink, f"{part}{index}", FRAME * 6 + 100 * index)
            segments.append(seg)
    results = await asyncio.gather(*(seg.wait_for_playout() for seg in segments))
    for seg, result in zip(segments, results, strict=True):
        assert result.status is PlayoutStatus.FULL
        assert result.played_ms == pytest.approx(seg.pushed_ms)
        assert result.started_at is not None and result.ended_at is not None
        assert result.ended_at - result.started_at == pytest.approx(seg.pushed_ms / 1000.0)
    for sink in lazy:
        assert sink.underruns == 0
        assert sink.frames_played == -(-(FRAME * 12 + 200 * lazy.index(sink)) // FRAME)
        await sink.aclose()


async def test_a_lazy_sink_resolves_its_segment_at_the_tick_after_the_last_frame() -> None:
    """Sleeping through the run does not delay the end: `full` at the next tick, as ever."""
    clock = ManualClock()
    sink = ClockedAudioSink(clock, RATE, 20)
    seg = _segment(sink, "s", FRAME * 10)
    await clock.advance(0.199)
    assert not seg.done
    await clock.advance(0.0011)  # the tick at 200 ms: the last frame (180 ms) has played
    assert seg.done
    result = await seg.wait_for_playout()
    assert (result.status, result.played_ms) == (PlayoutStatus.FULL, 200.0)
    assert result.ended_at == pytest.approx(0.2)
    await sink.aclose()


async def test_a_lazy_sink_plays_the_next_segment_on_time_after_a_clear() -> None:
    """A barge-in mid-run ends the sleep: the next answer starts on the next tick."""
    clock = ManualClock()
    sink = ClockedAudioSink(clock, RATE, 20)
    first = _segment(sink, "a", RATE * 5, end=False)
    await clock.advance(1.005)
    sink.clear()
    cut = await first.wait_for_playout()
    assert (cut.status, cut.played_ms) == (PlayoutStatus.PARTIAL, 51 * 20.0)  # ticks 0..1000 ms
    second = _segment(sink, "b", FRAME * 3)
    await clock.advance(0.02)
    assert second.started.done() and second.started.result() == pytest.approx(1.02)
    await clock.advance(0.1)
    result = await second.wait_for_playout()
    assert result.status is PlayoutStatus.FULL
    await sink.aclose()
