"""ITU-T G.711 µ-law and A-law codecs, table-driven with numpy.

Why it exists: telephony transports (Twilio media streams, SIP gateways) and the OpenAI
``audio/pcmu`` / ``audio/pcma`` formats carry 8 kHz G.711. ``audioop`` is gone from the
standard library (removed in Python 3.13), and a per-sample Python loop is far too slow for
the per-frame hot path, so every conversion is a single numpy table lookup:

- encode: a 65536-entry ``uint8`` table indexed by the int16 sample reinterpreted as uint16;
- decode: a 256-entry ``int16`` table indexed by the code byte.

The tables are built once at import (vectorised, ~1 ms) from the classic reference algorithm
(Sun Microsystems' public-domain ``g711.c``, 16-bit variant): µ-law with bias 0x84 and clip
32635, no zero-trap; A-law on the 13 most significant bits with the 0x55 even-bit inversion.
Known values: ``ulaw(0) == 0xFF``, ``ulaw(-1) == 0x7F``, ``ulaw_decode(0x00) == -32124``,
``alaw(0) == 0xD5``, ``alaw_decode(0xD5) == 8``, ``alaw_decode(0x55) == -8``.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from vocalis.audio.frame import Int16Array

__all__ = ["alaw_decode", "alaw_encode", "ulaw_decode", "ulaw_encode"]

_ULAW_BIAS = 0x84
_ULAW_CLIP = 32635


def _all_int16() -> npt.NDArray[np.int32]:
    """Every int16 value, ordered by its uint16 bit pattern (the encode-table index)."""
    return np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.int32)


def _segment(value: npt.NDArray[np.int32], ends: tuple[int, ...]) -> npt.NDArray[np.int32]:
    """Index of the first segment end that ``value`` does not exceed (len(ends) if none)."""
    return np.searchsorted(np.asarray(ends, dtype=np.int32), value, side="left").astype(np.int32)


def _build_ulaw_encode() -> npt.NDArray[np.uint8]:
    pcm = _all_int16()
    sign = np.where(pcm < 0, 0x80, 0).astype(np.int32)
    mag = np.minimum(np.abs(pcm), _ULAW_CLIP) + _ULAW_BIAS
    # exponent = position of the highest set bit of (mag >> 7), 0..7
    exponent = _segment(mag >> 7, (1, 3, 7, 15, 31, 63, 127, 255))
    mantissa = (mag >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8)


def _build_ulaw_decode() -> Int16Array:
    code = ~np.arange(256, dtype=np.int32) & 0xFF
    exponent = (code >> 4) & 0x07
    mantissa = code & 0x0F
    mag = (((mantissa << 3) + _ULAW_BIAS) << exponent) - _ULAW_BIAS
    return np.where(code & 0x80, -mag, mag).astype(np.int16)


def _build_alaw_encode() -> npt.NDArray[np.uint8]:
    pcm = _all_int16() >> 3  # 13-bit
    mask = np.where(pcm >= 0, 0xD5, 0x55).astype(np.int32)
    mag = np.where(pcm >= 0, pcm, -pcm - 1)
    seg = _segment(mag, (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF))
    shift = np.where(seg < 2, 1, seg)
    aval = (np.minimum(seg, 7) << 4) | ((mag >> shift) & 0x0F)
    aval = np.where(seg >= 8, 0x7F, aval)
    return ((aval ^ mask) & 0xFF).astype(np.uint8)


def _build_alaw_decode() -> Int16Array:
    code = np.arange(256, dtype=np.int32) ^ 0x55
    t = (code & 0x0F) << 4
    seg = (code & 0x70) >> 4
    t = np.where(seg == 0, t + 8, t + 0x108)
    t = np.where(seg > 1, t << np.maximum(seg - 1, 0), t)
    return np.where(code & 0x80, t, -t).astype(np.int16)


_ULAW_ENC = _build_ulaw_encode()
_ULAW_DEC = _build_ulaw_decode()
_ALAW_ENC = _build_alaw_encode()
_ALAW_DEC = _build_alaw_decode()
for _table in (_ULAW_ENC, _ULAW_DEC, _ALAW_ENC, _ALAW_DEC):
    _table.setflags(write=False)


def _as_index(pcm: Int16Array) -> npt.NDArray[np.uint16]:
    if pcm.dtype != np.int16:
        raise TypeError(f"G.711 encode expects int16 samples, got {pcm.dtype}")
    return pcm.reshape(-1).view(np.uint16)


def _as_codes(data: bytes | bytearray | memoryview) -> npt.NDArray[np.uint8]:
    return np.frombuffer(data, dtype=np.uint8)


def ulaw_encode(pcm: Int16Array) -> bytes:
    """Encode int16 PCM (any shape, flattened in C order) to G.711 µ-law bytes."""
    return _ULAW_ENC[_as_index(pcm)].tobytes()


def ulaw_decode(data: bytes | bytearray | memoryview) -> Int16Array:
    """Decode G.711 µ-law bytes to a new 1-D int16 array."""
    return _ULAW_DEC[_as_codes(data)]


def alaw_encode(pcm: Int16Array) -> bytes:
    """Encode int16 PCM (any shape, flattened in C order) to G.711 A-law bytes."""
    return _ALAW_ENC[_as_index(pcm)].tobytes()


def alaw_decode(data: bytes | bytearray | memoryview) -> Int16Array:
    """Decode G.711 A-law bytes to a new 1-D int16 array."""
    return _ALAW_DEC[_as_codes(data)]
