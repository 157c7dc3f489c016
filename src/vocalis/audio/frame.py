"""The one audio value type that moves through vocalis: a block of int16 PCM samples.

Why it exists: every part of the runtime (transports, providers, playout, the simulated server)
exchanges audio, and the heard contract depends on counting *played* milliseconds exactly.
A single frozen type with one sample format (signed 16-bit, native numpy ``int16``) and one
rule for converting between samples, bytes and milliseconds keeps those counts consistent.

Design notes:

- ``samples`` is ``(n,)`` for mono and ``(n, channels)`` for interleaved multi-channel audio.
  Mono is always one-dimensional so hot-path code never has to squeeze a trailing axis.
- :meth:`AudioFrame.from_pcm16` is zero-copy (``np.frombuffer``); the resulting array is
  read-only when the source buffer is (e.g. ``bytes``). Copy before mutating in place.
- Validation in ``__post_init__`` is a few identity checks for the common frame (native int16
  mono), the full checks otherwise: cheap enough to construct a frame per 20 ms per call.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "AudioFrame",
    "Int16Array",
    "ms_to_samples",
    "pcm16_bytes_to_ms",
    "samples_to_ms",
]

Int16Array = npt.NDArray[np.int16]

_PCM16_LE = np.dtype("<i2")
_INT16 = np.dtype(np.int16)
_BYTES_PER_SAMPLE = 2


def ms_to_samples(ms: float, rate: int) -> int:
    """Number of samples (per channel) in ``ms`` milliseconds at ``rate`` Hz, rounded to nearest.

    Rounding (not truncation) keeps ``ms_to_samples(samples_to_ms(n, r), r) == n``.
    """
    return round(ms * rate / 1000.0)


def samples_to_ms(n: int, rate: int) -> float:
    """Duration in milliseconds of ``n`` samples (per channel) at ``rate`` Hz."""
    return n * 1000.0 / rate


def pcm16_bytes_to_ms(nbytes: int, rate: int = 24000, channels: int = 1) -> float:
    """Duration in milliseconds of ``nbytes`` of 16-bit PCM (the OpenAI Realtime default format).

    Used to turn byte counts of received/played audio into the ``played_ms`` of the heard
    contract without materialising the samples.
    """
    return nbytes * 1000.0 / (_BYTES_PER_SAMPLE * channels * rate)


def _check_rate_channels(sample_rate: int, channels: int) -> None:
    if not isinstance(sample_rate, int) or isinstance(sample_rate, bool) or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive int, got {sample_rate!r}")
    if not isinstance(channels, int) or isinstance(channels, bool) or channels <= 0:
        raise ValueError(f"channels must be a positive int, got {channels!r}")


@dataclass(frozen=True, slots=True)
class AudioFrame:
    """A block of signed 16-bit PCM audio.

    ``samples`` has dtype ``int16`` and shape ``(n,)`` when ``channels == 1`` or
    ``(n, channels)`` otherwise. The frame is immutable as a value; the array is shared,
    not copied, so treat it as read-only.
    """

    samples: Int16Array
    sample_rate: int
    channels: int = 1

    def __post_init__(self) -> None:
        # The frame every source and provider makes 50 times a second per call (native int16
        # mono, int rate) passes on identity checks alone; anything else gets the full
        # checks below, which also word the errors.
        samples, rate, channels = self.samples, self.sample_rate, self.channels
        if (
            type(samples) is np.ndarray
            and samples.dtype is _INT16
            and samples.ndim == 1
            and type(channels) is int
            and channels == 1
            and type(rate) is int
            and rate > 0
        ):
            return
        self._check()

    def _check(self) -> None:
        _check_rate_channels(self.sample_rate, self.channels)
        samples = self.samples
        if not isinstance(samples, np.ndarray):
            raise TypeError(f"samples must be a numpy int16 array, got {type(samples).__name__}")
        if samples.dtype != np.int16:
            raise TypeError(
                f"samples must have dtype int16, got {samples.dtype}; "
                "convert float audio with (x * 32767).clip(-32768, 32767).astype(np.int16)"
            )
        if self.channels == 1:
            if samples.ndim != 1:
                raise ValueError(
                    f"mono samples must have shape (n,), got {samples.shape}; "
                    "use samples.reshape(-1) for a single-column array"
                )
        elif samples.ndim != 2 or samples.shape[1] != self.channels:
            raise ValueError(
                f"{self.channels}-channel samples must have shape (n, {self.channels}), "
                f"got {samples.shape}"
            )

    @property
    def num_samples(self) -> int:
        """Samples per channel (i.e. the number of sample instants)."""
        return int(self.samples.shape[0])

    @property
    def duration_ms(self) -> float:
        """Duration of the frame in milliseconds."""
        return float(self.samples.shape[0] * 1000.0 / self.sample_rate)

    @property
    def nbytes(self) -> int:
        """Size of the frame as 16-bit PCM bytes (all channels)."""
        return int(self.samples.size) * _BYTES_PER_SAMPLE

    def to_mono(self) -> AudioFrame:
        """The frame mixed down to one channel (the mean of the channels, rounded); a mono
        frame is returned as is. Caller audio is mono everywhere in vocalis, so a stereo WAV or
        a stereo test frame is mixed once at the edge."""
        if self.channels == 1:
            return self
        mixed: Int16Array = self.samples.mean(axis=1).round().astype(np.int16)
        return AudioFrame(mixed, self.sample_rate)

    def to_pcm16(self) -> bytes:
        """Little-endian interleaved 16-bit PCM bytes (the wire format of most providers)."""
        samples = self.samples
        if samples.dtype.byteorder == ">":  # pragma: no cover - only on big-endian hosts
            samples = samples.astype(_PCM16_LE)
        return samples.tobytes()

    @classmethod
    def from_pcm16(
        cls, data: bytes | bytearray | memoryview, sample_rate: int, channels: int = 1
    ) -> AudioFrame:
        """Wrap little-endian interleaved 16-bit PCM without copying.

        Raises ``ValueError`` when the byte count is not a whole number of sample instants
        (odd length, or not divisible by ``2 * channels``).
        """
        _check_rate_channels(sample_rate, channels)
        nbytes = memoryview(data).nbytes if isinstance(data, memoryview) else len(data)
        if nbytes % _BYTES_PER_SAMPLE:
            raise ValueError(f"PCM16 data must have an even number of bytes, got {nbytes}")
        if nbytes % (_BYTES_PER_SAMPLE * channels):
            raise ValueError(
                f"PCM16 data of {nbytes} bytes is not a whole number of {channels}-channel samples"
            )
        arr = np.frombuffer(data, dtype=_PCM16_LE)
        if arr.dtype != np.int16:  # pragma: no cover - only on big-endian hosts
            arr = arr.astype(np.int16)
        if channels > 1:
            arr = arr.reshape(-1, channels)
        return cls(arr, sample_rate, channels)

    def slice_ms(self, start_ms: float, end_ms: float | None = None) -> AudioFrame:
        """A view of the audio between ``start_ms`` and ``end_ms`` (clamped to the frame).

        ``end_ms=None`` means the end of the frame. No samples are copied.
        """
        if start_ms < 0:
            raise ValueError(f"start_ms must be >= 0, got {start_ms}")
        if end_ms is not None and end_ms < start_ms:
            raise ValueError(f"end_ms ({end_ms}) must be >= start_ms ({start_ms})")
        n = self.samples.shape[0]
        start = min(ms_to_samples(start_ms, self.sample_rate), n)
        end = n if end_ms is None else min(ms_to_samples(end_ms, self.sample_rate), n)
        return AudioFrame(self.samples[start:end], self.sample_rate, self.channels)

    @classmethod
    def silence(cls, duration_ms: float, sample_rate: int, channels: int = 1) -> AudioFrame:
        """A frame of digital silence lasting ``duration_ms`` (rounded to whole samples)."""
        _check_rate_channels(sample_rate, channels)
        if duration_ms < 0:
            raise ValueError(f"duration_ms must be >= 0, got {duration_ms}")
        n = ms_to_samples(duration_ms, sample_rate)
        shape: tuple[int, ...] = (n,) if channels == 1 else (n, channels)
        return cls(np.zeros(shape, dtype=np.int16), sample_rate, channels)

    @classmethod
    def concat(cls, frames: list[AudioFrame] | tuple[AudioFrame, ...]) -> AudioFrame:
        """Join frames of the same format into one (copies once)."""
        if not frames:
            raise ValueError("concat needs at least one frame")
        first = frames[0]
        for f in frames[1:]:
            if f.sample_rate != first.sample_rate or f.channels != first.channels:
                raise ValueError(
                    "cannot concat frames of different formats: "
                    f"{first.sample_rate} Hz/{first.channels} ch vs "
                    f"{f.sample_rate} Hz/{f.channels} ch"
                )
        return cls(np.concatenate([f.samples for f in frames]), first.sample_rate, first.channels)
