"""Event records and building the timeline from history.json + events.jsonl."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cli_support import parse_timeline

from vocalis.app.reports.outputs import (
    event_to_json,
    event_type_name,
    load_events,
    load_history,
    write_jsonl,
)
from vocalis.app.reports.timeline import render_html
from vocalis.app.reports.timeline_build import build_timeline
from vocalis.conversation.items import FunctionCallItem, MessageItem
from vocalis.runtime.events import (
    AgentStateChanged,
    ConversationItemAdded,
    MessageMetrics,
    ToolCallStarted,
    TurnMetrics,
)
from vocalis.transports.file import write_history_json

HISTORY: dict[str, list[dict[str, Any]]] = {
    "items": [
        {
            "id": "u1",
            "type": "message",
            "role": "user",
            "text": "Weather in Paris?",
            "interrupted": False,
            "played_ms": None,
        },
        {
            "id": "a1",
            "type": "message",
            "role": "assistant",
            "text": "Let me check.",
            "interrupted": False,
            "played_ms": 900.0,
            "generated_ms": 900.0,
            "response_id": "r1",
        },
        {
            "id": "f1",
            "type": "function_call",
            "call_id": "c1",
            "name": "get_weather",
            "arguments": '{"city":"Paris"}',
        },
        {
            "id": "o1",
            "type": "function_call_output",
            "call_id": "c1",
            "name": "get_weather",
            "output": '{"sky":"sunny"}',
            "is_error": False,
        },
        {
            "id": "a2",
            "type": "message",
            "role": "assistant",
            "text": "Sunny.",
            "interrupted": False,
            "played_ms": 700.0,
            "generated_ms": 700.0,
            "response_id": "r2",
        },
        {
            "id": "u2",
            "type": "message",
            "role": "user",
            "text": "And tomorrow?",
            "interrupted": False,
            "played_ms": None,
        },
        {
            "id": "a3",
            "type": "message",
            "role": "assistant",
            "text": "Tomorrow",
            "generated_text": "Tomorrow it rains all day.",
            "interrupted": True,
            "played_ms": 400.0,
            "generated_ms": 2000.0,
            "response_id": "r3",
        },
        {
            "id": "a4",
            "type": "message",
            "role": "assistant",
            "text": "",
            "generated_text": "Anything else?",
            "interrupted": True,
            "played_ms": 0.0,
            "generated_ms": 800.0,
            "response_id": "r3",
        },
    ]
}

EVENTS = [
    {"t": 0.0, "type": "agent_state_changed", "old": "initializing", "new": "listening", "at": 0.0},
    {"t": 1.0, "type": "user_state_changed", "old": "listening", "new": "speaking", "at": 1.0},
    {"t": 2.0, "type": "user_state_changed", "old": "speaking", "new": "listening", "at": 2.0},
    {"t": 2.5, "type": "agent_state_changed", "old": "thinking", "new": "speaking", "at": 2.5},
    {
        "t": 2.6,
        "type": "tool_call_started",
        "call_id": "c1",
        "name": "get_weather",
        "arguments": '{"city":"Paris"}',
    },
    {
        "t": 2.65,
        "type": "tool_call_finished",
        "call_id": "c1",
        "name": "get_weather",
        "output": '{"sky":"sunny"}',
        "is_error": False,
        "duration_s": 0.05,
    },
    {
        "t": 3.4,
        "type": "turn_metrics",
        "response_id": "r1",
        "voice_to_voice_ms": 500.0,
        "first_audio_played_at": 2.5,
        "user_speech_end_at": 2.0,
        "messages": [
            {"item_id": "a1", "generated_ms": 900.0, "played_ms": 900.0, "playout": "full"}
        ],
    },
    {
        "t": 4.5,
        "type": "turn_metrics",
        "response_id": "r2",
        "voice_to_voice_ms": None,
        "first_audio_played_at": 3.8,
        "messages": [
            {"item_id": "a2", "generated_ms": 700.0, "played_ms": 700.0, "playout": "full"}
        ],
    },
    {"t": 5.0, "type": "user_state_changed", "old": "listening", "new": "speaking", "at": 5.0},
    {"t": 5.8, "type": "user_state_changed", "old": "speaking", "new": "listening", "at": 5.8},
    {
        "t": 7.0,
        "type": "turn_metrics",
        "response_id": "r3",
        "voice_to_voice_ms": 600.0,
        "first_audio_played_at": 6.4,
        "user_speech_end_at": 5.8,
        "messages": [
            {"item_id": "a3", "generated_ms": 2000.0, "played_ms": 400.0, "playout": "partial"},
            {
                "item_id": "a4",
                "generated_ms": 800.0,
                "played_ms": 0.0,
                "playout": "skipped",
                "generated_text": "Anything else?",
            },
        ],
    },
    {"t": 8.0, "type": "agent_state_changed", "old": "speaking", "new": "listening", "at": 7.0},
]


def test_timeline_from_history_and_events() -> None:
    tl = build_timeline(HISTORY, EVENTS, title="t")
    by_id = {m.item_id: m for m in tl.messages}
    assert [m.item_id for m in tl.messages] == ["u1", "a1", "a2", "u2", "a3", "a4"]
    assert (by_id["u1"].start_ms, by_id["u1"].end_ms) == (1000.0, 2000.0)
    assert (by_id["u2"].start_ms, by_id["u2"].end_ms) == (5000.0, 5800.0)
    assert by_id["a1"].start_ms == 2500.0
    assert by_id["a2"].start_ms == 3800.0
    # Heard segments play back to back; the never-played a4 is drawn where it would have
    # played: after all 2000 ms generated for a3 (not where a3 was cut).
    assert by_id["a3"].start_ms == 6400.0 and by_id["a4"].start_ms == 8400.0
    assert by_id["a3"].status == "interrupted" and by_id["a4"].status == "never played"
    assert [(t.index, t.latency_ms) for t in tl.turns] == [(1, 500.0), (2, 600.0)]
    assert by_id["a1"].turn == 1 and by_id["a2"].turn is None and by_id["a3"].turn == 2
    [tool] = tl.tools
    assert (tool.name, tool.output, tool.after_item_id) == ("get_weather", '{"sky":"sunny"}', "a1")
    assert tool.start_ms == 2600.0 and tool.end_ms == 2650.0
    assert [s.state for s in tl.states] == ["listening", "speaking", "listening"]
    assert tl.states[-1].end_ms == 8000.0


def test_never_played_messages_come_from_the_metrics() -> None:
    """A skipped message is deleted from the history, but the page still shows it."""
    history = {"items": [i for i in HISTORY["items"] if i["id"] != "a4"]}
    tl = build_timeline(history, EVENTS)
    assert [m.item_id for m in tl.messages] == ["u1", "a1", "a2", "u2", "a3", "a4"]
    skipped = tl.messages[-1]
    assert skipped.status == "never played" and skipped.generated_ms == 800.0
    assert skipped.start_ms == 8400.0
    # Its text comes from the metrics too: shown struck through, as never heard.
    assert skipped.text == "" and skipped.unheard_text == "Anything else?"
    page = render_html(tl)
    assert '<span class="unheard">Anything else?</span>' in page


def test_simulated_caller_spans_take_precedence() -> None:
    tl = build_timeline(HISTORY, EVENTS, caller_speech_ms=[(900.0, 1900.0), (4900.0, 5700.0)])
    assert [m.start_ms for m in tl.messages if m.role == "user"] == [900.0, 4900.0]


def test_files_round_trip_into_a_page(tmp_path: Path) -> None:
    write_history_json(tmp_path / "history.json", HISTORY)
    write_jsonl(tmp_path / "events.jsonl", EVENTS)
    tl = build_timeline(
        load_history(tmp_path / "history.json"), load_events(tmp_path / "events.jsonl")
    )
    page = parse_timeline(render_html(tl))
    assert page.order == ["u1", "a1", "c1", "a2", "u2", "a3", "a4"]


def test_runtime_events_serialize_with_relative_times() -> None:
    origin = 100.0
    state = event_to_json(AgentStateChanged("listening", "speaking", 102.5), t=102.5, origin=origin)
    assert state == {
        "t": 2.5,
        "type": "agent_state_changed",
        "old": "listening",
        "new": "speaking",
        "at": 2.5,
    }
    item = MessageItem("a1", "assistant", "Hi", played_ms=300.0)
    added = event_to_json(ConversationItemAdded(item), t=103.0, origin=origin)
    assert added["item"]["id"] == "a1" and added["item"]["played_ms"] == 300.0
    call = event_to_json(
        ConversationItemAdded(FunctionCallItem("f", "c", "n", "{}")), t=100.0, origin=origin
    )
    assert call["item"]["type"] == "function_call"
    metrics = TurnMetrics(
        "r1",
        "server",
        user_speech_end_at=101.0,
        first_audio_played_at=101.6,
        voice_to_voice_ms=612.34,
        messages=(MessageMetrics("a1", 900.0, 450.0, "partial"),),
    )
    record = event_to_json(metrics, t=104.0, origin=origin)
    assert record["type"] == "turn_metrics"
    assert record["first_audio_played_at"] == 1.6 and record["voice_to_voice_ms"] == 612.3
    assert record["messages"][0] == {
        "item_id": "a1",
        "generated_ms": 900.0,
        "played_ms": 450.0,
        "playout": "partial",
        "generated_text": "",
    }
    json.dumps(record)
    assert event_type_name(ToolCallStarted("c", "n", "{}")) == "tool_call_started"
