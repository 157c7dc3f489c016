"""Reading server messages: the fast `wire.get` and `wire.decode_audio` equal the plain ones.

Why: both run for every field of every server message (most fields are absent, so `get`
also tries the snake_case spelling), and the fast versions cache the spelling and skip the
URL-safe rewrite of standard base64. The reference implementations below are the code they
replaced, verbatim; any input on which the two differ is a changed protocol reading.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from vocalis.audio.codec import b64decode_bytes
from vocalis.providers.gemini import wire

_URLSAFE = str.maketrans("-_", "+/")
NAMES = [
    "setupComplete",
    "serverContent",
    "toolCallCancellation",
    "inlineData",
    "data",
    "turnComplete",
    "generationComplete",
    "newHandle",
]


def reference_get(obj: dict[str, Any], camel: str) -> Any:
    value = obj.get(camel)
    if value is None:
        snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in camel)
        value = obj.get(snake)
    return value


def reference_decode(data: object) -> np.ndarray:
    if not isinstance(data, str):
        raise ValueError("inlineData.data is not base64 text")
    text = data.translate(_URLSAFE)
    raw = b64decode_bytes(text + "=" * (-len(text) % 4))
    usable = len(raw) - len(raw) % 2
    return np.frombuffer(raw[:usable], dtype="<i2").astype(np.int16, copy=False)


def _outcome(decode: Any, data: object) -> tuple[str, Any]:
    try:
        samples = decode(data)
    except ValueError:
        return ("refused", None)
    return (str(samples.dtype), samples.tobytes())


KEYS = st.sampled_from([*NAMES, *(wire.snake_case(n) for n in NAMES), "other"])
VALUES: st.SearchStrategy[object] = st.none() | st.integers() | st.just({}) | st.just("x")


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(KEYS, VALUES, max_size=6), st.sampled_from(NAMES))
def test_get_reads_what_the_plain_lookup_read(obj: dict[str, Any], camel: str) -> None:
    assert wire.get(obj, camel) == reference_get(obj, camel)


BASE64ISH = st.text(
    st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_= \n!"),
    max_size=40,
)
ENCODED = st.binary(max_size=30).flatmap(
    lambda raw: st.sampled_from(
        [
            base64.b64encode(raw).decode(),
            base64.urlsafe_b64encode(raw).decode(),
            base64.urlsafe_b64encode(raw).decode().rstrip("="),
            base64.b64encode(raw).decode().rstrip("="),
        ]
    )
)


@settings(max_examples=1000, deadline=None)
@given(BASE64ISH | ENCODED | st.none() | st.integers())
def test_decode_audio_decodes_what_the_plain_decoder_decoded(data: object) -> None:
    assert _outcome(wire.decode_audio, data) == _outcome(reference_decode, data)
