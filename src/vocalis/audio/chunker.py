"""Re-chunk a stream of int16 samples into fixed-size frames.

Why it exists: audio arrives in whatever sizes the peer chose (provider deltas of 20-200 ms,
:class:`~vocalis.audio.resample.StreamResampler` bursts, browser 10 ms packets), while a
playout clock or a telephony socket wants exact 20 ms frames. The chunker emits views of the
input whenever it can and copies only the sub-frame remainder.
"""

from __future__ import annotations

import numpy as np

from vocalis.audio.frame import Int16Array

__all__ = ["FrameChunker"]


class FrameChunker:
    """Accumulate int16 samples (shape ``(n,)`` or ``(n, channels)``) into fixed-size frames."""

    __slots__ = ("_buf", "_channels", "_fill", "frame_samples")

    def __init__(self, frame_samples: int, channels: int = 1) -> None:
        if frame_samples <= 0:
            raise ValueError(f"frame_samples must be positive, got {frame_samples}")
        if channels <= 0:
            raise ValueError(f"channels must be positive, got {channels}")
        self.frame_samples = frame_samples
        self._channels = channels
        shape: tuple[int, ...] = (frame_samples,) if channels == 1 else (frame_samples, channels)
        self._buf: Int16Array = np.zeros(shape, dtype=np.int16)
        self._fill = 0

    @property
    def pending(self) -> int:
        """Samples (per channel) held back, waiting for a full frame."""
        return self._fill

    def push(self, samples: Int16Array) -> list[Int16Array]:
        """Add samples; return every completed frame (each exactly ``frame_samples`` long).

        Returned frames may be views of ``samples``; do not modify ``samples`` afterwards.
        """
        if samples.dtype != np.int16:
            raise TypeError(f"FrameChunker expects int16 samples, got {samples.dtype}")
        size = self.frame_samples
        out: list[Int16Array] = []
        pos = 0
        n = samples.shape[0]
        if self._fill:
            take = min(size - self._fill, n)
            self._buf[self._fill : self._fill + take] = samples[:take]
            self._fill += take
            pos = take
            if self._fill < size:
                return out
            out.append(self._buf)
            self._buf = np.empty_like(self._buf)
            self._fill = 0
        whole = (n - pos) // size
        if whole:
            block = samples[pos : pos + whole * size]
            out.extend(block[i * size : (i + 1) * size] for i in range(whole))
            pos += whole * size
        rest = n - pos
        if rest:
            self._buf[:rest] = samples[pos:]
            self._fill = rest
        return out

    def flush(self, *, pad: bool = False) -> Int16Array | None:
        """Return the held-back remainder (zero-padded to a full frame if ``pad``), or None."""
        if not self._fill:
            return None
        if pad:
            self._buf[self._fill :] = 0
            tail = self._buf
        else:
            tail = self._buf[: self._fill].copy()
        self._buf = np.empty_like(self._buf)
        self._fill = 0
        return tail
