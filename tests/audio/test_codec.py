"""Base64 PCM16 transport encoding."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from vocalis.audio import b64decode_bytes, b64decode_pcm16, b64encode_bytes, b64encode_pcm16


def test_pcm16_round_trip_matches_stdlib() -> None:
    rng = np.random.default_rng(1)
    samples = rng.integers(-32768, 32768, size=4801, dtype=np.int16)
    encoded = b64encode_pcm16(samples)
    assert encoded == base64.b64encode(samples.astype("<i2").tobytes()).decode()
    decoded = b64decode_pcm16(encoded)
    assert decoded.dtype == np.int16
    assert np.array_equal(decoded, samples)


def test_encode_non_contiguous_and_stereo() -> None:
    stereo = np.arange(20, dtype=np.int16).reshape(10, 2)
    assert b64decode_pcm16(b64encode_pcm16(stereo)).tolist() == list(range(20))
    left = stereo[:, 0]  # strided view
    assert b64decode_pcm16(b64encode_pcm16(left)).tolist() == list(range(0, 20, 2))


def test_empty() -> None:
    assert b64encode_pcm16(np.zeros(0, dtype=np.int16)) == ""
    assert b64decode_pcm16("").size == 0


def test_bytes_helpers() -> None:
    assert b64encode_bytes(b"\x00\x01\x02") == "AAEC"
    assert b64decode_bytes("AAEC") == b"\x00\x01\x02"
    assert b64decode_bytes(b"AAEC") == b"\x00\x01\x02"


@pytest.mark.parametrize("bad", ["AAE", "AA=C", "AA EC", "AAEC\n", "!!!!", "A==="])
def test_invalid_base64_is_a_clear_value_error(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid base64"):
        b64decode_bytes(bad)


def test_odd_byte_count_rejected() -> None:
    with pytest.raises(ValueError, match="even number of bytes"):
        b64decode_pcm16(base64.b64encode(b"\x00\x01\x02").decode())


def test_wrong_dtype_rejected() -> None:
    with pytest.raises(TypeError, match="int16"):
        b64encode_pcm16(np.zeros(3, dtype=np.float32))
