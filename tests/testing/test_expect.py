"""`vocalis.testing.Transcript`: each assertion passes on what happened and fails, naming
what happened instead, on anything else (pure: built from typed events and history items)."""

from __future__ import annotations

import pytest

from vocalis.conversation.items import (
    ConversationItem,
    FunctionCallItem,
    FunctionCallOutputItem,
    MessageItem,
)
from vocalis.runtime.events import SessionEvent, ToolCallFinished, ToolCallStarted
from vocalis.testing import Transcript

EVENTS: list[SessionEvent] = [
    ToolCallStarted("c1", "get_weather", '{"city": "Paris", "unit": "c"}'),
    ToolCallFinished("c1", "get_weather", '{"sky": "sunny"}', False, 0.0),
    ToolCallStarted("c2", "book", "{}"),
    ToolCallFinished("c2", "book", '{"error": "full"}', True, 0.0),
]
ITEMS: list[ConversationItem] = [
    MessageItem(id="u1", role="user", text="Weather in Paris?"),
    FunctionCallItem(id="f1", call_id="c1", name="get_weather", arguments='{"city": "Paris"}'),
    FunctionCallOutputItem(id="o1", call_id="c1", output='{"sky": "sunny"}'),
    MessageItem(
        id="a1",
        role="assistant",
        text="It is sunny",
        interrupted=True,
        played_ms=820.0,
        generated_text="It is sunny and warm all day.",
    ),
]
T = Transcript(EVENTS, ITEMS)


def test_tool_calls_match_on_a_subset_of_the_arguments() -> None:
    call = T.expect_tool_call("get_weather", city="Paris")
    assert call.result == {"sky": "sunny"} and not call.is_error
    assert T.expect_tool_call("book").is_error
    with pytest.raises(AssertionError, match=r"get_weather\(city='Rome'\)") as info:
        T.expect_tool_call("get_weather", city="Rome")
    assert "tool call get_weather" in str(info.value)  # the summary of what happened
    with pytest.raises(AssertionError):
        T.expect_no_tool_call("book")
    T.expect_no_tool_call("hang_up")


def test_said_is_generated_text_and_heard_is_what_played() -> None:
    assert T.expect_said("warm all day").item_id == "a1"
    T.expect_heard("it is SUNNY")
    with pytest.raises(AssertionError, match="caller to hear 'warm'"):
        T.expect_heard("warm")
    T.expect_not_heard("warm")
    with pytest.raises(AssertionError):
        T.expect_not_heard("sunny")


def test_interrupted_at_is_within_one_frame() -> None:
    assert T.expect_interrupted(at_ms=810).played_ms == 820.0
    with pytest.raises(AssertionError, match="at 700 ms"):
        T.expect_interrupted(at_ms=700)
    with pytest.raises(AssertionError, match="interrupted message"):
        Transcript([], ITEMS[:3]).expect_interrupted()


def test_history_equals_compares_heard_messages_in_order() -> None:
    T.expect_history([("user", "Weather in Paris?"), ("assistant", "It is sunny")])
    with pytest.raises(AssertionError, match="history differs"):
        T.expect_history([("user", "Weather in Paris?")])
