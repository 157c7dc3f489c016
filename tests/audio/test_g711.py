"""G.711 µ-law / A-law: known vectors, an exhaustive check against a scalar reference, and
round-trip error bounds."""

from __future__ import annotations

import numpy as np
import pytest

from vocalis.audio import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode

ALL_INT16 = np.arange(65536, dtype=np.uint16).view(np.int16)


def ref_ulaw(pcm: int) -> int:
    """Scalar transcription of the public-domain Sun g711.c linear2ulaw (16-bit variant)."""
    sign = 0x80 if pcm < 0 else 0
    mag = min(abs(pcm), 32635) + 0x84
    exponent = max((mag >> 7).bit_length() - 1, 0)
    mantissa = (mag >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def ref_alaw(pcm: int) -> int:
    """Scalar transcription of Sun g711.c linear2alaw."""
    pcm >>= 3
    if pcm >= 0:
        mask = 0xD5
    else:
        mask = 0x55
        pcm = -pcm - 1
    ends = (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)
    seg = next((i for i, end in enumerate(ends) if pcm <= end), 8)
    if seg >= 8:
        return 0x7F ^ mask
    aval = seg << 4
    aval |= (pcm >> 1 if seg < 2 else pcm >> seg) & 0x0F
    return aval ^ mask


def test_ulaw_known_vectors() -> None:
    enc = ulaw_encode(np.array([0, -1, 32767, -32768, 1], dtype=np.int16))
    assert list(enc) == [0xFF, 0x7F, 0x80, 0x00, 0xFF]
    dec = ulaw_decode(bytes([0x00, 0x80, 0xFF, 0x7F, 0x7E, 0xFE]))
    assert dec.tolist() == [-32124, 32124, 0, 0, -8, 8]


def test_alaw_known_vectors() -> None:
    enc = alaw_encode(np.array([0, -1, 32767, -32768], dtype=np.int16))
    assert list(enc) == [0xD5, 0x55, 0xAA, 0x2A]
    dec = alaw_decode(bytes([0xD5, 0x55, 0xAA, 0x2A]))
    assert dec.tolist() == [8, -8, 32256, -32256]


def test_exhaustive_against_scalar_reference() -> None:
    values = ALL_INT16.tolist()
    assert list(ulaw_encode(ALL_INT16)) == [ref_ulaw(v) for v in values]
    assert list(alaw_encode(ALL_INT16)) == [ref_alaw(v) for v in values]


def test_ulaw_is_sign_symmetric() -> None:
    pos = np.arange(1, 32768, dtype=np.int16)
    a = np.frombuffer(ulaw_encode(pos), dtype=np.uint8)
    b = np.frombuffer(ulaw_encode(-pos), dtype=np.uint8)
    assert np.array_equal(a ^ 0x80, b)


@pytest.mark.parametrize(
    ("encode", "decode"), [(ulaw_encode, ulaw_decode), (alaw_encode, alaw_decode)]
)
def test_decode_encode_is_identity_on_codes(encode: object, decode: object) -> None:
    codes = bytes(range(256))
    pcm = decode(codes)  # type: ignore[operator]
    reencoded = encode(pcm)  # type: ignore[operator]
    # every code survives, except µ-law's negative zero (0x7F) which maps to +0 (0xFF)
    diff = [c for c, r in zip(codes, reencoded, strict=True) if c != r]
    assert diff in ([], [0x7F])


def test_round_trip_error_bounds() -> None:
    pcm = ALL_INT16.astype(np.int32)
    for encode, decode, floor in ((ulaw_encode, ulaw_decode, 4), (alaw_encode, alaw_decode, 8)):
        back = decode(encode(ALL_INT16)).astype(np.int32)
        err = np.abs(back - pcm)
        # logarithmic companding: error at most half a step, step <= 1/16 of the magnitude
        bound = np.maximum(np.abs(pcm) / 16.0, floor) + 130  # +clip region at full scale
        assert (err <= bound).all()
        quiet = np.abs(pcm) < 100
        assert err[quiet].max() <= floor + 1
    # 8-bit codes for 16-bit input: SNR on a speech-level sine is ~38 dB
    t = np.arange(8000)
    sine = (8000 * np.sin(2 * np.pi * 440 * t / 8000)).astype(np.int16)
    for encode, decode in ((ulaw_encode, ulaw_decode), (alaw_encode, alaw_decode)):
        back = decode(encode(sine)).astype(np.float64)
        noise = back - sine
        snr = 10 * np.log10(np.mean(sine.astype(np.float64) ** 2) / np.mean(noise**2))
        assert snr > 30


def test_shapes_and_types() -> None:
    stereo = np.zeros((4, 2), dtype=np.int16)
    assert len(ulaw_encode(stereo)) == 8
    assert ulaw_decode(b"").size == 0
    assert alaw_decode(memoryview(b"\xd5\xd5")).tolist() == [8, 8]
    assert ulaw_decode(b"\xff").dtype == np.int16
    with pytest.raises(TypeError, match="int16"):
        ulaw_encode(np.zeros(3, dtype=np.float64))
