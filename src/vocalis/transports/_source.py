"""Caller audio that arrives from a callback (socket reader, device thread, a test's push).

Why it exists: the playground page, a Twilio stream, a microphone and the in-memory source
all deliver int16 mono audio at their own rate and must hand it to exactly one consumer at
the consumer's rate. The buffering, the single-consumer rule, the stateful resampling at the
edge (1000 ms in → 1000 ± 1 ms out, including the final flush) and the two ways to consume
(`frames()` iterated by a task, or `deliver()` forwarding synchronously inside the push) are
the same for all of them, so they live here once; each transport only decodes its wire format
and calls `feed_pcm()`.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Generic, Protocol, TypeVar

from vocalis.audio.frame import AudioFrame, Int16Array
from vocalis.audio.resample import StreamResampler
from vocalis.transports.base import AudioSource
from vocalis.utils.channel import Channel

__all__ = ["ChannelAudioSource", "FixedRateAudioSource", "FrameConverter", "PcmToRate"]

T = TypeVar("T")
T_contra = TypeVar("T_contra", contravariant=True)


class FrameConverter(Protocol[T_contra]):
    """What a source's queued items become at the consumer's rate (stateful resampling)."""

    def convert(self, item: T_contra) -> AudioFrame | None:
        """The frame ready so far for `item` (None: the resampler holds it for now)."""

    def tail(self) -> list[AudioFrame]:
        """What the resampler still holds once the stream ended."""


class ChannelAudioSource(AudioSource, Generic[T]):
    """A source whose producer pushes items into a `Channel`; one consumer, by either path."""

    def __init__(self) -> None:
        self._channel: Channel[T] = Channel()
        self._consumed = False

    @abc.abstractmethod
    def _converter(self, sample_rate: int) -> FrameConverter[T]:
        """What each queued item becomes at `sample_rate` (a fresh one per consumer)."""

    def _claim(self, sample_rate: int) -> FrameConverter[T]:
        if self._consumed:
            raise RuntimeError(f"{type(self).__name__} supports a single consumer")
        self._consumed = True
        return self._converter(sample_rate)

    def close(self) -> None:
        """Hang-up: the consumer gets the queued audio, then the stream ends."""
        self._channel.close()

    @property
    def closed(self) -> bool:
        return self._channel.closed

    async def frames(self, sample_rate: int) -> AsyncIterator[AudioFrame]:
        converter = self._claim(sample_rate)
        async for item in self._channel:
            frame = converter.convert(item)
            if frame is not None:
                yield frame
        for frame in converter.tail():
            yield frame

    async def deliver(self, sample_rate: int, on_frame: Callable[[AudioFrame], None]) -> None:
        """Forward every pushed item to `on_frame` inside the push itself (no task wake-up).

        `forward`, awaited until the stream ends (its error raised here). Queued items go
        first, in order. When this returns or is cancelled (the session ended), later pushes
        queue again instead of calling a consumer that is gone.
        """
        ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def on_end(error: BaseException | None) -> None:
            if ended.done():
                return
            if error is None:
                ended.set_result(None)
            else:
                ended.set_exception(error)

        stop = self.forward(sample_rate, on_frame, on_end)
        try:
            await ended
        finally:
            stop()

    def forward(
        self,
        sample_rate: int,
        on_frame: Callable[[AudioFrame], None],
        on_end: Callable[[BaseException | None], None],
    ) -> Callable[[], None]:
        """`deliver` on callbacks: the channel's close ends it (see `AudioSource.forward`)."""
        converter = self._claim(sample_rate)
        convert = converter.convert
        channel = self._channel
        stopped = False

        def forward(item: T) -> None:
            frame = convert(item)
            if frame is not None:
                on_frame(frame)

        def ended() -> None:
            if stopped:
                return
            error = channel.error  # what `on_frame` raised, if that ended the stream
            if error is None:
                try:
                    for frame in converter.tail():
                        on_frame(frame)
                except Exception as exc:
                    error = exc
            on_end(error)

        def stop() -> None:
            nonlocal stopped
            stopped = True
            channel.stop_forwarding()

        channel.forward_to(forward)
        channel.on_close(ended)
        return stop


class PcmToRate:
    """int16 chunks at one fixed rate → frames at the consumer's rate."""

    def __init__(self, source_rate: int, sample_rate: int) -> None:
        self._rate = sample_rate
        self._rs = StreamResampler(source_rate, sample_rate)

    def convert(self, item: Int16Array) -> AudioFrame | None:
        out = self._rs.push(item)
        return AudioFrame(out, self._rate) if out.shape[0] else None

    def tail(self) -> list[AudioFrame]:
        out = self._rs.flush()
        return [AudioFrame(out, self._rate)] if out.shape[0] else []


class FixedRateAudioSource(ChannelAudioSource[Int16Array]):
    """int16 mono audio at `source_rate` in, frames at the consumer's rate out; one consumer."""

    def __init__(self, source_rate: int) -> None:
        super().__init__()
        self.source_rate = source_rate

    def feed_pcm(self, pcm: Int16Array) -> None:
        """Queue audio (dropped once the source is closed: the call is over)."""
        self._channel.send(pcm)

    def _converter(self, sample_rate: int) -> FrameConverter[Int16Array]:
        return PcmToRate(self.source_rate, sample_rate)
