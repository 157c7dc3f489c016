"""Real-time `ClockedAudioSink`s share one frame timer per loop (`transports/ticker.py`):
each still plays its own timeline exactly, and one failing sink does not stop the others."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from vocalis.transports.base import PlayoutStatus
from vocalis.transports.clocked import ClockedAudioSink
from vocalis.utils.clock import MonotonicClock

RATE = 24000
FRAME = 480  # 20 ms


def _recording_sink(played: list[tuple[str, int]]) -> ClockedAudioSink:
    def on_frame(piece: np.ndarray, segment_id: str, at: float) -> None:
        played.append((segment_id, int(piece.shape[0])))

    return ClockedAudioSink(MonotonicClock(), RATE, 20, on_frame=on_frame)


async def test_sinks_on_the_real_clock_play_every_frame_of_their_own_segments() -> None:
    logs: list[list[tuple[str, int]]] = [[], [], []]
    sinks = [_recording_sink(log) for log in logs]
    segments = []
    for index, sink in enumerate(sinks):
        for part in ("a", "b"):
            seg = sink.begin_segment(f"{part}{index}", RATE)
            seg.push(np.ones(FRAME * 3 + 100 * index, dtype=np.int16))
            seg.end()
            segments.append(seg)
    results = await asyncio.gather(*(seg.wait_for_playout() for seg in segments))
    for seg, result in zip(segments, results, strict=True):
        assert result.status is PlayoutStatus.FULL
        assert result.played_ms == pytest.approx(seg.pushed_ms)
    for index, (sink, log) in enumerate(zip(sinks, logs, strict=True)):
        per_segment = {f"a{index}": 0, f"b{index}": 0}
        for segment_id, n in log:
            per_segment[segment_id] += n
        assert per_segment == {f"a{index}": FRAME * 3 + 100 * index} | {
            f"b{index}": FRAME * 3 + 100 * index
        }
        assert [sid for sid, _ in log] == sorted(sid for sid, _ in log)  # a before b
        assert sink.underruns == 0
        await sink.aclose()


async def test_a_failing_sink_does_not_stop_the_others() -> None:
    def broken(piece: np.ndarray, segment_id: str, at: float) -> None:
        raise ValueError("device gone")

    bad = ClockedAudioSink(MonotonicClock(), RATE, 20, on_frame=broken)
    good_log: list[tuple[str, int]] = []
    good = _recording_sink(good_log)
    bad_seg = bad.begin_segment("bad", RATE)
    good_seg = good.begin_segment("good", RATE)
    for seg in (bad_seg, good_seg):
        seg.push(np.ones(FRAME * 4, dtype=np.int16))
        seg.end()
    good_result = await good_seg.wait_for_playout()
    bad_result = await bad_seg.wait_for_playout()
    assert good_result.status is PlayoutStatus.FULL
    assert sum(n for _, n in good_log) == FRAME * 4
    assert bad_result.status is not PlayoutStatus.FULL
    with pytest.raises(RuntimeError, match="player failed"):
        await bad.aclose()
    await good.aclose()


async def test_pause_and_resume_on_the_real_clock_keep_the_position() -> None:
    log: list[tuple[str, int]] = []
    sink = _recording_sink(log)
    seg = sink.begin_segment("s", RATE)
    seg.push(np.ones(FRAME * 5, dtype=np.int16))
    sink.pause()
    held = seg.played_ms
    sink.resume()
    seg.end()
    result = await seg.wait_for_playout()
    assert held <= result.played_ms == pytest.approx(100.0)
    assert sum(n for _, n in log) == FRAME * 5
    await sink.aclose()
