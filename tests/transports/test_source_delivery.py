"""`AudioSource.deliver`: caller frames handed over inside the producer's push (#17).

The synchronous path must give the consumer exactly what iterating `frames()` gives —
same frames, same order, same resampled tail — only without a task wake-up per frame.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vocalis.audio.frame import AudioFrame
from vocalis.transports._source import FixedRateAudioSource
from vocalis.transports.base import AudioSource
from vocalis.transports.memory import MemoryAudioSource


def _tone(n: int, start: int = 0) -> np.ndarray:
    return ((np.arange(start, start + n) * 37) % 2000 - 1000).astype(np.int16)


async def test_push_reaches_the_consumer_before_push_returns() -> None:
    source = MemoryAudioSource(24000)
    source.push(_tone(480))  # queued before the consumer attached: delivered first
    got: list[AudioFrame] = []
    delivery = asyncio.create_task(source.deliver(24000, got.append))
    await asyncio.sleep(0)
    assert [f.num_samples for f in got] == [480]
    source.push(_tone(240, 480))
    assert [f.num_samples for f in got] == [480, 240]  # no await between push and delivery
    source.close()
    await delivery
    assert np.array_equal(np.concatenate([f.samples for f in got]), _tone(720))


async def test_a_failing_consumer_ends_delivery_with_its_error() -> None:
    source = MemoryAudioSource(24000)

    def refuse(frame: AudioFrame) -> None:
        raise ValueError("provider refused the frame")

    delivery = asyncio.create_task(source.deliver(24000, refuse))
    await asyncio.sleep(0)
    source.push(_tone(480))  # the producer never sees the consumer's error
    with pytest.raises(ValueError, match="refused"):
        await delivery


async def test_a_cancelled_consumer_is_not_called_again() -> None:
    source = FixedRateAudioSource(8000)
    got: list[AudioFrame] = []
    delivery = asyncio.create_task(source.deliver(8000, got.append))
    await asyncio.sleep(0)
    source.feed_pcm(_tone(160))
    delivery.cancel()
    with pytest.raises(asyncio.CancelledError):
        await delivery
    source.feed_pcm(_tone(160))
    assert len(got) == 1


async def test_one_consumer_whichever_path() -> None:
    source = MemoryAudioSource(24000)
    delivery = asyncio.create_task(source.deliver(24000, lambda frame: None))
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="single consumer"):
        await anext(source.frames(24000))
    source.close()
    await delivery


class _Iterated(AudioSource):
    """A source with only `frames()` (as a file or a simulated caller is)."""

    async def frames(self, sample_rate: int) -> AsyncIterator[AudioFrame]:
        for k in range(3):
            yield AudioFrame(_tone(480, 480 * k), sample_rate)


async def test_default_delivery_iterates_frames() -> None:
    got: list[AudioFrame] = []
    await _Iterated().deliver(24000, got.append)
    assert np.array_equal(np.concatenate([f.samples for f in got]), _tone(1440))


async def _all_paths(
    make: type[MemoryAudioSource] | type[FixedRateAudioSource],
    chunks: list[tuple[int, int]],
    rate: int,
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """What `frames()`, `deliver()` and `forward()` hand a consumer for the same pushes."""
    loop = asyncio.get_running_loop()
    outputs: list[list[np.ndarray]] = []
    for path in ("frames", "deliver", "forward"):
        source = make(chunks[0][0]) if make is FixedRateAudioSource else make(24000)
        got: list[np.ndarray] = []

        async def consume(
            src: AudioSource = source, out: list[np.ndarray] = got, path: str = path
        ) -> None:
            if path == "frames":
                async for frame in src.frames(rate):
                    out.append(frame.samples.copy())
            elif path == "deliver":
                await src.deliver(rate, lambda frame: out.append(frame.samples.copy()))
            else:
                ended: asyncio.Future[BaseException | None] = loop.create_future()
                src.forward(rate, lambda frame: out.append(frame.samples.copy()), ended.set_result)
                assert await ended is None

        consumer = asyncio.create_task(consume())
        await asyncio.sleep(0)
        offset = 0
        for chunk_rate, n in chunks:
            pcm = _tone(n, offset)
            offset += n
            if isinstance(source, FixedRateAudioSource):
                source.feed_pcm(pcm)
            else:
                source.push(AudioFrame(pcm, chunk_rate))
            await asyncio.sleep(0)
        source.close()
        await consumer
        outputs.append(got)
    return outputs[0], outputs[1], outputs[2]


_RATES = st.sampled_from([8000, 16000, 24000])


@settings(max_examples=40, deadline=None)
@given(
    chunks=st.lists(st.tuples(_RATES, st.integers(1, 1200)), min_size=1, max_size=12),
    rate=_RATES,
    fixed=st.booleans(),
)
def test_deliver_and_forward_give_what_frames_gives(
    chunks: list[tuple[int, int]], rate: int, fixed: bool
) -> None:
    if fixed:  # a fixed-rate source takes every chunk at its own rate
        chunks = [(chunks[0][0], n) for _, n in chunks]
    make = FixedRateAudioSource if fixed else MemoryAudioSource
    iterated, delivered, forwarded = asyncio.run(_all_paths(make, chunks, rate))
    for other in (delivered, forwarded):
        assert [a.shape for a in iterated] == [b.shape for b in other]
        for a, b in zip(iterated, other, strict=True):
            # soxr is not bit-exact between two resampler instances fed the same stream (±2
            # LSB measured, alignment-dependent SIMD); without resampling frames are identical.
            tolerance = 0 if all(r == rate for r, _ in chunks) else 4
            assert np.abs(a.astype(np.int32) - b).max(initial=0) <= tolerance


async def test_forward_hands_over_inside_the_push_and_ends_after_the_tail() -> None:
    source = FixedRateAudioSource(8000)
    source.feed_pcm(_tone(800))  # queued before the consumer attached: forwarded first
    got: list[int] = []
    ends: list[BaseException | None] = []
    stop = source.forward(24000, lambda frame: got.append(frame.num_samples), ends.append)
    assert stop is not None
    before = sum(got)
    source.feed_pcm(_tone(1600, 800))
    assert sum(got) > before  # no await between the push and the consumer
    source.close()
    assert sum(got) == 3 * 2400  # the resampler's tail went out before the end
    assert ends == [None]


async def test_forward_ends_with_the_consumers_error() -> None:
    source = MemoryAudioSource(24000)
    ends: list[BaseException | None] = []

    def refuse(frame: AudioFrame) -> None:
        raise ValueError("provider refused the frame")

    source.forward(24000, refuse, ends.append)
    source.push(_tone(480))  # the producer never sees the consumer's error
    source.push(_tone(480))
    assert [type(e) for e in ends] == [ValueError]


async def test_a_stopped_forward_is_not_called_again() -> None:
    source = MemoryAudioSource(24000)
    got: list[AudioFrame] = []
    ends: list[BaseException | None] = []
    stop = source.forward(24000, got.append, ends.append)
    assert stop is not None
    source.push(_tone(480))
    stop()
    source.push(_tone(480))
    source.close()
    assert len(got) == 1
    assert ends == []
    with pytest.raises(RuntimeError, match="single consumer"):
        await source.deliver(24000, got.append)


def test_a_source_with_only_frames_asks_for_a_task() -> None:
    assert _Iterated().forward(24000, lambda frame: None, lambda error: None) is None
