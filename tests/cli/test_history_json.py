"""The history file's item shape (issue #6): the same core keys on every item, at the source.

`vocalis run --history` and `vocalis demo` write `AgentSession.history_json()` as it is, so the
promise lives in `vocalis.conversation.items`: every item has `id, type, role, text,
interrupted, played_ms`, tool items add `name, arguments, output`, and a call and its output
complete each other by `call_id`.
"""

from __future__ import annotations

import json

from vocalis.conversation.items import (
    ConversationItem,
    FunctionCallItem,
    FunctionCallOutputItem,
    MessageItem,
    history_to_json,
)

CORE = ("id", "type", "role", "text", "interrupted", "played_ms")
TOOL = ("name", "arguments", "output")


def test_every_item_carries_the_core_keys_and_tools_their_pair() -> None:
    items: list[ConversationItem] = [
        MessageItem("u1", "user", "Weather in Paris?"),
        MessageItem("a1", "assistant", "Let me check.", played_ms=900.0, generated_ms=900.0),
        FunctionCallItem("fc1", "call_1", "get_weather", '{"city": "Paris"}'),
        FunctionCallOutputItem("out1", "call_1", '{"sky": "sunny"}'),  # created without a name
        MessageItem(
            "a2",
            "assistant",
            "It is",
            interrupted=True,
            played_ms=400.0,
            generated_ms=1500.0,
            generated_text="It is sunny.",
        ),
    ]
    data = history_to_json(items)
    json.dumps(data)  # plain JSON
    for entry in data["items"]:
        assert all(key in entry for key in CORE), entry
    by_id = {e["id"]: e for e in data["items"]}
    call, output = by_id["fc1"], by_id["out1"]
    for entry in (call, output):
        assert all(key in entry for key in TOOL), entry
        assert entry["text"] == "" and entry["interrupted"] is False
        assert entry["played_ms"] is None
    assert (call["role"], output["role"]) == ("assistant", "tool")
    assert call["output"] == '{"sky": "sunny"}'
    assert output["arguments"] == '{"city": "Paris"}'
    assert output["name"] == "get_weather"
    cut = by_id["a2"]
    assert cut["interrupted"] is True and cut["played_ms"] == 400.0
    assert cut["generated_text"] == "It is sunny."


def test_a_call_without_its_output_keeps_the_keys_with_null() -> None:
    """A call still running at hang-up (or an output whose call was dropped) is not an error."""
    lone_call = FunctionCallItem("fc1", "call_1", "slow_tool", "{}")
    lone_output = FunctionCallOutputItem("out2", "call_2", "done", name="other")
    data = history_to_json([lone_call, lone_output])
    call, output = data["items"]
    assert call["output"] is None and call["arguments"] == "{}"
    assert output["arguments"] is None and output["name"] == "other"
