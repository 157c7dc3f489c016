"""Sample-rate conversion for int16 audio, one-shot and streaming (libsoxr).

Why it exists: transports and providers disagree on rates (telephony 8 kHz, browsers 48 kHz,
OpenAI Realtime 24 kHz, espeak 22.05 kHz). Converting each 20 ms frame independently restarts
the filter at every frame boundary and produces clicks and a drifting sample count, so
streams go through :class:`StreamResampler`, which keeps the filter state between pushes.

Latency note: soxr processes in internal blocks, so with the default ``"HQ"`` quality a push
may return 0 samples and a later push a larger block (e.g. 8 kHz -> 24 kHz in 20 ms chunks
returns ~61 ms of audio every third push). The total is exact once :meth:`StreamResampler.flush`
has been called. Consumers that need fixed-size frames must re-chunk. ``quality="QQ"``
returns steady per-push output (cubic interpolation, lower quality) when latency matters
more than fidelity.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import soxr

from vocalis.audio.frame import Int16Array

__all__ = ["Quality", "StreamResampler", "resample"]

Quality = Literal["QQ", "LQ", "MQ", "HQ", "VHQ"]


def _check_rates(from_rate: int, to_rate: int) -> None:
    if from_rate <= 0 or to_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {from_rate} -> {to_rate}")


def _check_int16(samples: Int16Array) -> None:
    if samples.dtype != np.int16:
        raise TypeError(f"resample expects int16 samples, got {samples.dtype}")


def resample(
    samples: Int16Array, from_rate: int, to_rate: int, *, quality: Quality = "HQ"
) -> Int16Array:
    """Resample a whole int16 signal (shape ``(n,)`` or ``(n, channels)``) in one call.

    Returns the input unchanged (same object) when the rates are equal.
    """
    _check_rates(from_rate, to_rate)
    _check_int16(samples)
    if from_rate == to_rate:
        return samples
    out: Int16Array = soxr.resample(samples, from_rate, to_rate, quality=quality)
    return out


class StreamResampler:
    """Stateful resampler for a stream of int16 chunks of any size.

    ``push`` returns whatever output is ready (possibly empty); ``flush`` drains the filter
    at the end of the stream and resets it so the object can be reused for a new stream.
    When the rates are equal, both are identity passthroughs with no copy.
    """

    __slots__ = ("_channels", "_from_rate", "_stream", "_to_rate")

    def __init__(
        self, from_rate: int, to_rate: int, channels: int = 1, *, quality: Quality = "HQ"
    ) -> None:
        _check_rates(from_rate, to_rate)
        if channels <= 0:
            raise ValueError(f"channels must be positive, got {channels}")
        self._from_rate = from_rate
        self._to_rate = to_rate
        self._channels = channels
        self._stream: soxr.ResampleStream | None = (
            None
            if from_rate == to_rate
            else soxr.ResampleStream(from_rate, to_rate, channels, dtype="int16", quality=quality)
        )

    @property
    def from_rate(self) -> int:
        return self._from_rate

    @property
    def to_rate(self) -> int:
        return self._to_rate

    @property
    def channels(self) -> int:
        return self._channels

    def _empty(self) -> Int16Array:
        shape: tuple[int, ...] = (0,) if self._channels == 1 else (0, self._channels)
        return np.zeros(shape, dtype=np.int16)

    def push(self, samples: Int16Array) -> Int16Array:
        """Feed the next chunk; returns the resampled output available so far."""
        _check_int16(samples)
        if self._stream is None:
            return samples
        out: Int16Array = self._stream.resample_chunk(samples, last=False)
        return out

    def flush(self) -> Int16Array:
        """Drain the remaining output at end of stream and reset for reuse."""
        if self._stream is None:
            return self._empty()
        out: Int16Array = self._stream.resample_chunk(self._empty(), last=True)
        self._stream.clear()
        return out
