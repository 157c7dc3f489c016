"""Caller audio that arrives at one fixed rate from a callback (socket reader, device thread).

Why it exists: the playground page, a Twilio stream and a microphone all deliver int16 mono
audio at their own rate and must hand it to exactly one consumer at the consumer's rate. The
buffering, the single-consumer rule and the stateful resampling at the edge (1000 ms in →
1000 ± 1 ms out, including the final flush) are the same for all of them, so they live here
once; each transport only decodes its wire format and calls `feed_pcm()`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from vocalis.audio.frame import AudioFrame, Int16Array
from vocalis.audio.resample import StreamResampler
from vocalis.transports.base import AudioSource
from vocalis.utils.channel import Channel

__all__ = ["FixedRateAudioSource"]


class FixedRateAudioSource(AudioSource):
    """int16 mono audio at `source_rate` in, frames at the consumer's rate out; one consumer."""

    def __init__(self, source_rate: int) -> None:
        self.source_rate = source_rate
        self._channel: Channel[Int16Array] = Channel()
        self._consumed = False

    def feed_pcm(self, pcm: Int16Array) -> None:
        """Queue audio (dropped once the source is closed: the call is over)."""
        self._channel.send(pcm)

    def close(self) -> None:
        """Hang-up: `frames()` ends after the queued audio."""
        self._channel.close()

    @property
    def closed(self) -> bool:
        return self._channel.closed

    async def frames(self, sample_rate: int) -> AsyncIterator[AudioFrame]:
        if self._consumed:
            raise RuntimeError(f"{type(self).__name__} supports a single consumer")
        self._consumed = True
        rs = StreamResampler(self.source_rate, sample_rate)
        async for pcm in self._channel:
            out = rs.push(pcm)
            if out.shape[0]:
                yield AudioFrame(out, sample_rate)
        tail = rs.flush()
        if tail.shape[0]:
            yield AudioFrame(tail, sample_rate)
