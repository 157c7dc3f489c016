"""Base64 transport encoding for PCM16 audio.

Why it exists: realtime provider protocols (OpenAI Realtime ``input_audio_buffer.append``,
``response.output_audio.delta``; Twilio media streams) carry audio as base64 text inside JSON.
This runs for every audio frame in both directions, so it uses ``binascii`` directly (C speed,
no intermediate ``bytes`` copies on encode) and validates strictly so that a malformed peer
message fails with a clear ``ValueError`` instead of silently dropping characters.
"""

from __future__ import annotations

import binascii

import numpy as np

from vocalis.audio.frame import Int16Array

__all__ = [
    "b64decode_bytes",
    "b64decode_pcm16",
    "b64encode_bytes",
    "b64encode_pcm16",
]

_PCM16_LE = np.dtype("<i2")


def b64encode_bytes(data: bytes | bytearray | memoryview) -> str:
    """Standard base64 (with padding, no newlines) of ``data`` as ``str``."""
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def b64decode_bytes(data: str | bytes) -> bytes:
    """Decode strict standard base64 (padding required, no whitespace or foreign characters).

    Raises ``ValueError`` with a short reason; the input itself is not echoed because it can
    be large.
    """
    try:
        return binascii.a2b_base64(data, strict_mode=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"invalid base64 audio data ({len(data)} chars): {exc}") from None


def b64encode_pcm16(samples: Int16Array) -> str:
    """Base64 of ``samples`` as little-endian interleaved PCM16.

    Contiguous native int16 input is encoded straight from its buffer (no copy).
    """
    if samples.dtype != np.int16:
        raise TypeError(f"samples must have dtype int16, got {samples.dtype}")
    if not samples.flags.c_contiguous or samples.dtype.byteorder == ">":
        samples = np.ascontiguousarray(samples, dtype=_PCM16_LE)
    return binascii.b2a_base64(samples.data.cast("B"), newline=False).decode("ascii")


def b64decode_pcm16(data: str | bytes) -> Int16Array:
    """Decode base64 PCM16 (little-endian) into a 1-D int16 array.

    The array is a read-only view over the decoded bytes (zero extra copy); call ``.copy()``
    before modifying it in place. Raises ``ValueError`` on invalid base64 or an odd byte count.
    """
    raw = b64decode_bytes(data)
    if len(raw) % 2:
        raise ValueError(f"PCM16 audio must have an even number of bytes, got {len(raw)}")
    arr = np.frombuffer(raw, dtype=_PCM16_LE)
    if arr.dtype != np.int16:  # pragma: no cover - only on big-endian hosts
        arr = arr.astype(np.int16)
    return arr
