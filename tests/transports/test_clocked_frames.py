"""ClockedAudioSink frames against a reference model of the device (hypothesis).

Why: the sink plays a frame inside one pushed chunk on a short path and everything else
(frames across chunks or segments, short frames) on the general one; whatever the chunk
sizes and however late the ticks run, the frames handed out and the segments' results must
be those of a device taking `frame_samples` per tick from the queued audio, back to back.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vocalis.audio.frame import Int16Array
from vocalis.transports.base import PlayoutResult, PlayoutStatus
from vocalis.transports.clocked import ClockedAudioSink
from vocalis.utils.clock import ManualClock

RATE = 24000
FRAME = 480  # 20 ms

Played = tuple[str, float, list[int]]


def _expected(segments: list[list[int]]) -> list[Played]:
    """What the device plays: frame k takes the next FRAME samples at k * 20 ms, one piece
    per pushed chunk it touches, each stamped with the time of its first sample."""
    out: list[Played] = []
    pos = 0  # samples of the whole stream before this chunk
    value = 0
    for k, sizes in enumerate(segments):
        for size in sizes:
            done = 0
            while done < size:
                frame, offset = divmod(pos + done, FRAME)
                n = min(size - done, FRAME - offset)
                at = frame * 0.02 + offset / RATE
                out.append((f"s{k}", at, list(range(value + done, value + done + n))))
                done += n
            pos += size
            value += size
    return out


async def _play(
    segments: list[list[int]], steps: list[float]
) -> tuple[list[Played], list[PlayoutResult], ClockedAudioSink]:
    clock = ManualClock()
    played: list[Played] = []

    def on_frame(piece: Int16Array, segment_id: str, at: float) -> None:
        played.append((segment_id, at, piece.tolist()))

    sink = ClockedAudioSink(clock, RATE, 20, on_frame=on_frame)
    value = 0
    handles = []
    for k, sizes in enumerate(segments):
        segment = sink.begin_segment(f"s{k}", RATE)
        for size in sizes:
            segment.push(np.arange(value, value + size, dtype=np.int16))
            value += size
        segment.end()
        handles.append(segment)
    total = sum(map(sum, segments)) / RATE
    i = 0
    while clock.now() <= total + 0.04:
        await clock.advance(steps[i % len(steps)])
        i += 1
    results = [await segment.wait_for_playout() for segment in handles]
    await sink.aclose()
    return played, results, sink


@settings(max_examples=60, deadline=None)
@given(
    segments=st.lists(
        # Whole frames (the provider's usual 20/40 ms deltas) and arbitrary sizes.
        st.lists(st.sampled_from([480, 960]) | st.integers(1, 1500), max_size=5),
        min_size=1,
        max_size=4,
    ).filter(lambda segs: sum(map(sum, segs)) < 20000),
    steps=st.lists(st.sampled_from([0.005, 0.02, 0.03, 0.07]), min_size=1, max_size=4),
)
def test_frames_and_results_match_the_device_model(
    segments: list[list[int]], steps: list[float]
) -> None:
    played, results, sink = asyncio.run(_play(segments, steps))
    expected = _expected(segments)
    assert [(s, v) for s, _, v in played] == [(s, v) for s, _, v in expected]
    assert [at for _, at, _ in played] == pytest.approx([at for _, at, _ in expected], abs=1e-9)
    total = sum(map(sum, segments))
    assert sink.frames_played == -(-total // FRAME)
    assert sink.underruns == 0
    start = 0
    for sizes, result in zip(segments, results, strict=True):
        size = sum(sizes)
        if size == 0:
            assert result.status is PlayoutStatus.SKIPPED
            continue
        assert result.status is PlayoutStatus.FULL
        assert result.played_ms == size * 1000 / RATE
        first_frame, first_offset = divmod(start, FRAME)
        assert result.started_at == pytest.approx(first_frame * 0.02 + first_offset / RATE)
        end_frame, end_offset = divmod(start + size - 1, FRAME)
        assert result.ended_at == pytest.approx(end_frame * 0.02 + (end_offset + 1) / RATE)
        start += size
