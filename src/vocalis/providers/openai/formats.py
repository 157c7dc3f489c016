"""Wire audio formats of the OpenAI Realtime protocol.

Why a module: three formats (PCM16 24 kHz, G.711 µ-law, G.711 A-law) differ in sample rate,
bytes per millisecond and codec, and *every* duration the heard contract depends on (audio
received per item, truncate positions) is derived from these numbers. One table keeps the
encoder, the decoder and the millisecond math consistent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

import numpy as np

from vocalis.audio.codec import b64decode_bytes
from vocalis.audio.frame import Int16Array
from vocalis.audio.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode

AudioFormatName: TypeAlias = Literal["pcm16", "g711_ulaw", "g711_alaw"]

_PCM16_LE = np.dtype("<i2")


def _pcm16_encode(samples: Int16Array) -> bytes | memoryview:
    if not samples.flags.c_contiguous or samples.dtype.byteorder == ">":
        samples = np.ascontiguousarray(samples, dtype=_PCM16_LE)
    return samples.data.cast("B")


def _pcm16_decode(raw: bytes) -> Int16Array:
    if len(raw) % 2:
        raise ValueError(f"PCM16 audio must have an even number of bytes, got {len(raw)}")
    return np.frombuffer(raw, dtype=_PCM16_LE)


@dataclass(frozen=True, slots=True)
class AudioFormat:
    """One wire format: GA format object, sample rate, and the codec to/from int16 samples."""

    name: AudioFormatName
    sample_rate: int
    # Encoded bytes per millisecond of mono audio (PCM16@24k: 48, G.711: 8).
    bytes_per_ms: float
    wire: dict[str, Any]
    encode: Callable[[Int16Array], bytes | memoryview]
    _decode: Callable[[bytes], Int16Array]

    def decode_b64(self, data: str) -> tuple[Int16Array, float]:
        """Decode one base64 audio delta to int16 samples and its duration in ms."""
        raw = b64decode_bytes(data)
        return self._decode(raw), len(raw) / self.bytes_per_ms

    def wire_dict(self) -> dict[str, Any]:
        """A fresh copy of the GA format object (callers may mutate what they send)."""
        return dict(self.wire)


AUDIO_FORMATS: dict[AudioFormatName, AudioFormat] = {
    "pcm16": AudioFormat(
        "pcm16", 24000, 48.0, {"type": "audio/pcm", "rate": 24000}, _pcm16_encode, _pcm16_decode
    ),
    "g711_ulaw": AudioFormat(
        "g711_ulaw", 8000, 8.0, {"type": "audio/pcmu"}, ulaw_encode, ulaw_decode
    ),
    "g711_alaw": AudioFormat(
        "g711_alaw", 8000, 8.0, {"type": "audio/pcma"}, alaw_encode, alaw_decode
    ),
}


def audio_format(name: AudioFormatName) -> AudioFormat:
    try:
        return AUDIO_FORMATS[name]
    except KeyError:
        raise ValueError(
            f"unknown audio format {name!r}; use one of {sorted(AUDIO_FORMATS)}"
        ) from None
