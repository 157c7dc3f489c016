"""encode_event writes exactly what json.dumps writes, whether or not it splices SafeText."""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from vocalis.sim.wire_json import SafeText, encode_event

_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


def _dumps(event: dict[str, Any]) -> str:
    return json.dumps(event, separators=(",", ":"))


@given(st.dictionaries(st.text(), _JSON_VALUES, max_size=6), st.text(), st.binary())
def test_trailing_safe_text_is_spliced_byte_exact(
    fields: dict[str, Any], key: str, audio: bytes
) -> None:
    event = {**fields}
    event.pop(key, None)
    event[key] = SafeText(base64.b64encode(audio).decode())
    assert encode_event(event) == _dumps(event)
    assert json.loads(encode_event(event)) == event


@given(st.dictionaries(st.text(), _JSON_VALUES, max_size=6))
def test_events_without_safe_text_are_plain_json(event: dict[str, Any]) -> None:
    assert encode_event(event) == _dumps(event)


def test_an_audio_delta_keeps_its_wire_shape() -> None:
    delta = SafeText(base64.b64encode(bytes(range(256)) * 4).decode())
    event = {"type": "response.output_audio.delta", "event_id": "event_1", "delta": delta}
    assert encode_event(event) == (
        '{"type":"response.output_audio.delta","event_id":"event_1","delta":"' + delta + '"}'
    )
    # SafeText placed before other fields is just text to json.
    moved = {"delta": delta, "type": "response.output_audio.delta"}
    assert encode_event(moved) == _dumps(moved)
