"""Conversation core: ordering, delete/retrieve/truncate rules and the exact error texts."""

from __future__ import annotations

import pytest

from vocalis.sim import errors
from vocalis.sim.conversation import Conversation, Item, WordSpan
from vocalis.sim.items import parse_client_item


def _user(item_id: str, text: str = "hi") -> Item:
    return Item(
        id=item_id, type="message", role="user", content=[{"type": "input_text", "text": text}]
    )


def _assistant_audio(item_id: str, ms: int) -> Item:
    item = Item(
        id=item_id,
        type="message",
        role="assistant",
        content=[{"type": "output_audio", "transcript": "one two three"}],
    )
    item.set_audio(b"\x01\x00" * 24 * ms)  # PCM16 24 kHz: 48 bytes per ms
    item.words = [
        WordSpan("one", 0, 300),
        WordSpan(" two", 350, 700),
        WordSpan(" three", 750, ms),
    ]
    return item


def test_insert_append_root_and_after() -> None:
    conv = Conversation()
    assert conv.insert(_user("a")) is None
    assert conv.insert(_user("b")) == "a"
    assert conv.insert(_user("c"), "a") == "a"
    assert conv.insert(_user("r"), "root") is None
    assert conv.insert(_user("e"), "") == "b"  # "" means append, as the SDK sends it
    assert [i.id for i in conv.items] == ["r", "a", "c", "b", "e"]
    assert conv.previous_id("c") == "a"
    assert conv.previous_id("r") is None


def test_insert_unknown_previous_and_duplicate_id_are_refused() -> None:
    conv = Conversation()
    conv.insert(_user("a"))
    with pytest.raises(errors.RealtimeError) as exc:
        conv.insert(_user("b"), "nope")
    assert exc.value.param == "previous_item_id"
    with pytest.raises(errors.RealtimeError) as exc:
        conv.insert(_user("a"))
    assert exc.value.code == "item_duplicate_id"
    assert [i.id for i in conv.items] == ["a"]


def test_delete_and_double_delete() -> None:
    conv = Conversation()
    conv.insert(_user("a"))
    conv.insert(_user("b"))
    conv.delete("a")
    assert [i.id for i in conv.items] == ["b"]
    with pytest.raises(errors.RealtimeError) as exc:
        conv.delete("a")
    assert exc.value.payload("cli_1") == {
        "type": "invalid_request_error",
        "code": "item_delete_invalid_item_id",
        "message": "Error deleting item: the item with id 'a' does not exist.",
        "param": None,
        "event_id": None,
    }


def test_retrieve_unknown() -> None:
    with pytest.raises(errors.RealtimeError) as exc:
        Conversation().retrieve("x")
    assert exc.value.code == "item_retrieve_invalid_item_id"
    assert exc.value.message == "Error retrieving item: the item with id 'x' does not exist."


def test_retrieve_wire_includes_audio_only_when_asked() -> None:
    item = _assistant_audio("a", 100)
    assert "audio" not in item.to_wire()["content"][0]
    assert len(item.to_wire(include_audio=True)["content"][0]["audio"]) == 6400  # 4800 B b64


def test_truncate_cuts_audio_and_keeps_fully_heard_words() -> None:
    conv = Conversation()
    conv.insert(_assistant_audio("a", 1000))
    item = conv.truncate("a", 0, 720)
    assert item.audio_ms == 720
    assert item.text == "one two"
    assert item.truncated_at_ms == 720
    assert item.summary()["audio_ms"] == 720


def test_truncate_errors_have_the_real_texts() -> None:
    conv = Conversation()
    conv.insert(_assistant_audio("a", 2450))
    conv.insert(_user("u"))
    text_only = Item(
        id="t", type="message", role="assistant", content=[{"type": "output_text", "text": "x"}]
    )
    conv.insert(text_only)
    cases = {
        ("a", 2535): ("invalid_value", "Audio content of 2450ms is already shorter than 2535ms"),
        ("u", 10): (
            "unsupported_content_type",
            "Only model output audio messages can be truncated",
        ),
        ("t", 10): (
            "unsupported_content_type",
            "Only model output audio messages can be truncated",
        ),
        ("a", -11): (
            "integer_below_min_value",
            "Invalid 'audio_end_ms': integer below minimum value. Expected a value >= 0, "
            "but got -11 instead.",
        ),
        ("zz", 10): ("item_truncate_invalid_item_id", None),
    }
    for (item_id, end), (code, message) in cases.items():
        with pytest.raises(errors.RealtimeError) as exc:
            conv.truncate(item_id, 0, end)
        assert exc.value.code == code
        if message is not None:
            assert exc.value.message == message
    assert conv.get("a") is not None and conv.get("a").audio_ms == 2450  # type: ignore[union-attr]


def test_truncate_granularity_reports_coarse_length() -> None:
    conv = Conversation(truncate_granularity_ms=50)
    conv.insert(_assistant_audio("a", 2493))
    with pytest.raises(errors.RealtimeError) as exc:
        conv.truncate("a", 0, 2460)
    assert exc.value.message == "Audio content of 2450ms is already shorter than 2460ms"


def test_truncate_at_full_length_is_allowed() -> None:
    conv = Conversation()
    conv.insert(_assistant_audio("a", 1000))
    assert conv.truncate("a", 0, 1000).text == "one two three"


def _parse(raw: object, known: set[str] | None = None) -> Item:
    counter = iter(range(1, 100))
    return parse_client_item(
        raw,
        new_id=lambda: f"item_{next(counter)}",
        input_bytes_per_ms=48.0,
        known_call_ids=known or set(),
    )


def test_parse_client_items() -> None:
    user = _parse(
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}
    )
    assert (user.id, user.role, user.text) == ("item_1", "user", "hi")
    call = _parse({"type": "function_call", "name": "f", "arguments": "{}", "call_id": "c1"})
    assert call.to_wire()["call_id"] == "c1"
    out = _parse({"type": "function_call_output", "call_id": "c1", "output": "ok"}, {"c1"})
    assert out.text == "ok"


@pytest.mark.parametrize(
    ("raw", "code", "message"),
    [
        (None, "missing_required_parameter", "Missing required parameter: 'item'."),
        ({"type": "bogus"}, "invalid_value", None),
        ({"type": "message", "role": "user"}, "missing_required_parameter", None),
        (
            {"type": "message", "role": "user", "content": [], "modalities": 1},
            "unknown_parameter",
            "Unknown parameter: 'item.modalities'.",
        ),
        (
            {"type": "function_call_output", "call_id": "nope", "output": "x"},
            "invalid_value",
            "Tool call ID 'nope' not found in conversation.",
        ),
        (
            {"type": "message", "role": "assistant", "content": [{"type": "output_audio"}]},
            "invalid_value",
            None,
        ),
        (
            {"type": "message", "role": "system", "content": [{"type": "input_audio"}]},
            "invalid_value",
            None,
        ),
    ],
)
def test_parse_client_item_errors(raw: object, code: str, message: str | None) -> None:
    with pytest.raises(errors.RealtimeError) as exc:
        _parse(raw)
    assert exc.value.code == code
    if message is not None:
        assert exc.value.message == message
