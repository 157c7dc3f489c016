"""The span tree of a traced conformance call: preamble + tool call, then a barge-in.

Asserted through the SDK's in-memory exporter: span names, parent/child links, the key
attributes (what was generated, played and heard; the tool call; the history edits) and the
barge-in span events — and that conversation text appears only with the content opt-in.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from telemetry_support import ANSWER, PREAMBLE, REPLY, TracedCall, traced_call

from vocalis.conversation.heard import heard_prefix
from vocalis.conversation.items import FunctionCallItem, FunctionCallOutputItem, MessageItem
from vocalis.telemetry import names as a

pytestmark = pytest.mark.timeout(60)


def _by_name(call: TracedCall, name: str) -> list[ReadableSpan]:
    return sorted((s for s in call.spans if s.name == name), key=lambda s: s.start_time or 0)


def _parent(call: TracedCall, span: ReadableSpan) -> ReadableSpan | None:
    if span.parent is None:
        return None
    [parent] = [s for s in call.spans if s.context.span_id == span.parent.span_id]
    return parent


@pytest.fixture(scope="module")
def call() -> TracedCall:
    # One call for the structural tests (they only read its spans).
    return asyncio.run(traced_call())


def test_one_trace_rooted_in_the_call_span(call: TracedCall) -> None:
    names = Counter(s.name for s in call.spans)
    assert names == {
        "vocalis.call": 1,
        "vocalis.provider.connection": 1,
        "vocalis.user_turn": 2,
        "vocalis.response": 3,
        "vocalis.assistant_message": 4,
        "vocalis.tool_call": 1,
    }
    [root] = _by_name(call, "vocalis.call")
    assert root.parent is None
    assert {s.context.trace_id for s in call.spans} == {root.context.trace_id}
    assert call.trace_id == f"{root.context.trace_id:032x}"
    assert root.attributes is not None
    assert root.attributes[a.RESPONSES] == 3 and root.attributes[a.USER_TURNS] == 2
    assert root.attributes[a.CLOSE_REASON] == "closed"
    for name in ("vocalis.provider.connection", "vocalis.user_turn", "vocalis.response"):
        assert all(_parent(call, s) is root for s in _by_name(call, name)), name
    for span in call.spans:
        assert span.end_time is not None and span.start_time is not None
        assert span.end_time >= span.start_time, span.name


def test_responses_nest_their_messages_and_tool_calls(call: TracedCall) -> None:
    first, follow, reply = _by_name(call, "vocalis.response")
    assert [r.attributes[a.ORIGIN] for r in (first, follow, reply) if r.attributes] == [
        "server",
        "tool_followup",
        "server",
    ]
    messages = _by_name(call, "vocalis.assistant_message")
    assert [_parent(call, m) for m in messages] == [first, follow, follow, reply]
    [tool] = _by_name(call, "vocalis.tool_call")
    assert _parent(call, tool) is first
    history = call.harness.session.history
    [fc] = [i for i in history if isinstance(i, FunctionCallItem)]
    [output] = [i for i in history if isinstance(i, FunctionCallOutputItem)]
    assert tool.attributes == {
        a.TOOL_NAME: "get_weather",
        a.TOOL_CALL_ID: "call_w1",
        a.ARGUMENTS_BYTES: len(fc.arguments.encode()),
        a.DURATION_MS: pytest.approx(200.0, abs=25.0),
        a.OUTPUT_BYTES: len(output.output.encode()),
        a.TOOL_ERROR: False,
    }
    # The caller's turns: each response to a caller turn links to it.
    turn1, turn2 = _by_name(call, "vocalis.user_turn")
    assert [link.context.span_id for link in first.links] == [turn1.context.span_id]
    assert [link.context.span_id for link in reply.links] == [turn2.context.span_id]
    assert first.attributes is not None and a.TURN_LATENCY_MS in first.attributes
    assert follow.attributes is not None and follow.attributes[a.INTERRUPTED] is True


def test_messages_report_generated_played_heard_and_the_history_edit(
    call: TracedCall,
) -> None:
    preamble, cut, never, reply = (
        m.attributes or {} for m in _by_name(call, "vocalis.assistant_message")
    )
    heard = {m.id: m for m in call.harness.session.history if isinstance(m, MessageItem)}
    assert preamble[a.OUTCOME] == "full" and preamble[a.HISTORY_OP] == "none"
    assert preamble[a.HEARD_CHARS] == len(PREAMBLE)
    assert preamble[a.PLAYED_MS] == preamble[a.GENERATED_MS]

    assert cut[a.OUTCOME] == "partial" and cut[a.HISTORY_OP] == "truncate"
    cut_item = heard[str(cut[a.ITEM_ID])]
    assert cut[a.PLAYED_MS] == pytest.approx(cut_item.played_ms, abs=0.1)
    assert 300 <= float(cut[a.PLAYED_MS]) <= 320  # type: ignore[arg-type]
    assert cut[a.GENERATED_MS] > cut[a.PLAYED_MS]  # type: ignore[operator]
    assert cut[a.HEARD_CHARS] == len(cut_item.text)
    expected = heard_prefix(ANSWER, float(cut[a.PLAYED_MS]), float(cut[a.GENERATED_MS]))  # type: ignore[arg-type]
    assert cut_item.text == expected

    assert never[a.OUTCOME] == "skipped" and never[a.HISTORY_OP] == "delete"
    assert never[a.PLAYED_MS] == 0 and never[a.HEARD_CHARS] == 0
    assert str(never[a.ITEM_ID]) not in heard

    assert reply[a.OUTCOME] == "full" and reply[a.HEARD_CHARS] == len(REPLY)


def test_barge_in_is_an_event_on_the_cut_response_and_the_callers_turn(
    call: TracedCall,
) -> None:
    first, follow, reply = _by_name(call, "vocalis.response")
    _, turn2 = _by_name(call, "vocalis.user_turn")
    for span in (follow, turn2):
        [event] = span.events
        assert event.name == "vocalis.barge_in"
        assert event.attributes == {a.SOURCE: "server_vad"}
        assert span.start_time is not None and event.timestamp >= span.start_time
    assert not first.events and not reply.events


def test_no_conversation_text_without_the_opt_in(call: TracedCall) -> None:
    text_keys = {
        a.TRANSCRIPT_TEXT,
        a.HEARD_TEXT,
        a.GENERATED_TEXT,
        a.ARGUMENTS_TEXT,
        a.OUTPUT_TEXT,
    }
    for span in call.spans:
        assert not text_keys & set(span.attributes or {}), span.name
        for value in (span.attributes or {}).values():
            assert PREAMBLE not in str(value) and "Paris" not in str(value)


def test_the_opt_in_adds_heard_and_generated_text() -> None:
    call = asyncio.run(traced_call(capture_content=True))
    preamble, cut, never, _reply = (
        m.attributes or {} for m in _by_name(call, "vocalis.assistant_message")
    )
    assert preamble[a.HEARD_TEXT] == PREAMBLE
    assert cut[a.GENERATED_TEXT] == ANSWER
    assert len(str(cut[a.HEARD_TEXT])) == cut[a.HEARD_CHARS]
    assert never[a.HEARD_TEXT] == ""
    [tool] = _by_name(call, "vocalis.tool_call")
    assert tool.attributes is not None and "Paris" in str(tool.attributes[a.ARGUMENTS_TEXT])


def test_logs_inside_the_call_carry_its_trace_and_span_ids(call: TracedCall) -> None:
    [record] = call.tool_logs  # logged by the tool, in a task the session started
    [root] = _by_name(call, "vocalis.call")
    assert getattr(record, "trace_id", None) == call.trace_id
    assert getattr(record, "span_id", None) == f"{root.context.span_id:016x}"
