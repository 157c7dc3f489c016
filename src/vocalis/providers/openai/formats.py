"""Wire audio formats of the OpenAI Realtime protocol.

Why a module: three formats (PCM16 24 kHz, G.711 µ-law, G.711 A-law) differ in sample rate
and codec, and *every* duration the heard contract depends on (audio
received per item, truncate positions) is derived from these numbers. One table keeps the
encoder, the decoder and the millisecond math consistent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from vocalis.audio.codec import b64decode_bytes, b64decode_pcm16, b64encode_bytes, b64encode_pcm16
from vocalis.audio.frame import Int16Array, samples_to_ms
from vocalis.audio.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode

AudioFormatName: TypeAlias = Literal["pcm16", "g711_ulaw", "g711_alaw"]


@dataclass(frozen=True, slots=True)
class AudioFormat:
    """One wire format: GA format object, sample rate, and the codec to/from int16 samples.

    Durations come from the decoded sample count and ``sample_rate`` (one sample per
    channel per tick for every format here), so there is no separate bytes-per-ms figure to
    keep in step with the codec.
    """

    name: AudioFormatName
    sample_rate: int
    wire: dict[str, Any]
    encode_b64: Callable[[Int16Array], str]
    _decode_b64: Callable[[str], Int16Array]

    def decode_b64(self, data: str) -> tuple[Int16Array, float]:
        """Decode one base64 audio delta to int16 samples and its duration in ms."""
        samples = self._decode_b64(data)
        return samples, samples_to_ms(len(samples), self.sample_rate)

    def wire_dict(self) -> dict[str, Any]:
        """A fresh copy of the GA format object (callers may mutate what they send)."""
        return dict(self.wire)


AUDIO_FORMATS: dict[AudioFormatName, AudioFormat] = {
    "pcm16": AudioFormat(
        "pcm16",
        24000,
        {"type": "audio/pcm", "rate": 24000},
        b64encode_pcm16,
        b64decode_pcm16,
    ),
    "g711_ulaw": AudioFormat(
        "g711_ulaw",
        8000,
        {"type": "audio/pcmu"},
        lambda samples: b64encode_bytes(ulaw_encode(samples)),
        lambda data: ulaw_decode(b64decode_bytes(data)),
    ),
    "g711_alaw": AudioFormat(
        "g711_alaw",
        8000,
        {"type": "audio/pcma"},
        lambda samples: b64encode_bytes(alaw_encode(samples)),
        lambda data: alaw_decode(b64decode_bytes(data)),
    ),
}


def audio_format(name: AudioFormatName) -> AudioFormat:
    try:
        return AUDIO_FORMATS[name]
    except KeyError:
        raise ValueError(
            f"unknown audio format {name!r}; use one of {sorted(AUDIO_FORMATS)}"
        ) from None
