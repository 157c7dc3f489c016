"""The codec accepts and refuses exactly what ``binascii.a2b_base64(strict_mode=True)`` does.

Why: with the ``fast`` extra the codec decodes with pybase64, whose ``validate=True`` is not
the standard library's strict mode (it refuses e.g. ``'a9b/='``, which strict mode decodes).
A peer's audio must decode to the same bytes, and be refused in the same cases, whichever
backend is installed — so every test compares against the standard library directly.
"""

from __future__ import annotations

import base64
import binascii
import string

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from vocalis.audio import b64decode_bytes, b64decode_pcm16, b64encode_bytes, b64encode_pcm16
from vocalis.audio.codec import BASE64_BACKEND

_ALPHABET = string.ascii_letters + string.digits + "+/"
_JUNK = "= \n\r\t-_.!\x00é€"


def _reference(data: str | bytes) -> bytes | None:
    """The standard library's strict decode; ``None`` when it refuses the input."""
    try:
        return binascii.a2b_base64(data, strict_mode=True)
    except (binascii.Error, ValueError):
        return None


def _codec(data: str | bytes) -> bytes | None:
    try:
        return b64decode_bytes(data)
    except ValueError as exc:
        assert "invalid base64" in str(exc)
        return None


@st.composite
def _mutated_base64(draw: st.DrawFn) -> str:
    """Valid base64 with junk or padding inserted, characters dropped, or the tail cut."""
    text = list(base64.b64encode(draw(st.binary(max_size=24))).decode())
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.integers(0, len(text)))
        edit = draw(st.sampled_from(["insert", "drop", "cut"]))
        if edit == "insert":
            text.insert(where, draw(st.sampled_from(_JUNK + "A/")))
        elif edit == "drop" and text:
            del text[min(where, len(text) - 1)]
        else:
            del text[where:]
    return "".join(text)


_near_base64 = st.text(alphabet=_ALPHABET + "=", max_size=12)
_any_text = st.text(alphabet=_ALPHABET + _JUNK, max_size=12)


@settings(max_examples=500)
@given(st.one_of(_mutated_base64(), _near_base64, _any_text))
@example("a9b/=")
@example("QQ==QQ==")
@example("QR==")
@example("é")
def test_decode_matches_stdlib_strict(text: str) -> None:
    assert _codec(text) == _reference(text)
    raw = text.encode("utf-8")
    assert _codec(raw) == _reference(raw)


@given(st.binary(max_size=300))
def test_valid_base64_decodes_to_the_original(data: bytes) -> None:
    assert b64decode_bytes(base64.b64encode(data).decode()) == data


@given(st.binary(max_size=300))
def test_encode_matches_stdlib(data: bytes) -> None:
    expected = base64.b64encode(data).decode()
    assert b64encode_bytes(data) == expected
    assert b64encode_bytes(memoryview(bytearray(data))) == expected


@given(st.lists(st.integers(-32768, 32767), max_size=200))
def test_pcm16_round_trip(values: list[int]) -> None:
    samples = np.array(values, dtype=np.int16)
    encoded = b64encode_pcm16(samples)
    assert encoded == base64.b64encode(samples.astype("<i2").tobytes()).decode()
    assert b64decode_pcm16(encoded).tolist() == values


def test_fast_backend_in_use_when_installed() -> None:
    pytest.importorskip("pybase64")
    assert BASE64_BACKEND == "pybase64"
