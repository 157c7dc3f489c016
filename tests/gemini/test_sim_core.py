"""The Gemini sim core, driven frame by frame with explicit time (no sockets).

Every server frame is validated strictly against the google-genai SDK's LiveServerMessage
(``sim_support.sent``), so each test here also checks the wire shapes.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from vocalis.sim.gemini.resumption import ResumptionStore
from vocalis.sim.gemini.session import GeminiSimSession, SessionLimits
from vocalis.sim.scenario import Scenario, load_scenario

from .sim_support import (
    WEATHER_RESPONSES,
    caller_speech,
    closed_with,
    feed,
    kinds,
    run_until_idle,
    sent,
    setup_frame,
    silence,
)

WEATHER = load_scenario({"responses": WEATHER_RESPONSES})
LONG = load_scenario({"responses": [WEATHER.responses[2].model_dump()]})
TOOLS = [{"functionDeclarations": [{"name": "get_weather", "parameters": {"type": "object"}}]}]


def _session(pace: float = 0.0, scenario: Scenario = WEATHER, **kw: Any) -> GeminiSimSession:
    return GeminiSimSession(0, scenario=scenario, now=0.0, pace=pace, **kw)


def _tool_response(call_id: str, output: object, *, sdk: bool = True) -> str:
    response = {"id": call_id, "name": "get_weather", "response": {"output": output}}
    key = "tool_response" if sdk else "toolResponse"
    return json.dumps({key: {"functionResponses": [response]}})


def test_setup_first_and_setup_complete() -> None:
    session = _session()
    refused = session.receive(json.dumps({"realtime_input": {"audioStreamEnd": True}}), 0.0)
    closed = closed_with(refused)
    assert closed is not None and closed.code == 1007 and "setup" in closed.reason

    session = _session()
    assert kinds(sent(session.receive(setup_frame(), 0.0))) == ["setupComplete"]
    assert session.setup is not None and session.setup.model.startswith("gemini-2.5")


def test_spoken_turn_tool_call_and_answer_in_sdk_spelling() -> None:
    session = _session()
    sent(session.receive(setup_frame(tools=TOOLS), 0.0))
    messages, now = feed(session, caller_speech("What is the weather in Paris?"), 0.0)
    more, now = run_until_idle(session, now)
    messages += more
    seen = kinds(messages)
    assert seen[0] == "inputTranscription"
    assert seen.index("audio") < seen.index("outputTranscription") < seen.index("toolCall")
    assert "turnComplete" not in seen  # the turn waits for the tool response
    call = next(m["toolCall"]["functionCalls"][0] for m in messages if "toolCall" in m)
    assert call["name"] == "get_weather" and call["args"] == {"city": "Paris"}

    answer = sent(session.receive(_tool_response(call["id"], {"sky": "sunny"}), now))
    more, now = run_until_idle(session, now)
    answer += more
    assert kinds(answer)[-3:] == ["generationComplete", "turnComplete", "usageMetadata"][-3:] or (
        kinds(answer)[-2:] == ["turnComplete", "usageMetadata"]
    )
    words = "".join(
        m["serverContent"]["outputTranscription"]["text"]
        for m in answer
        if "outputTranscription" in m.get("serverContent", {})
    )
    assert words.strip() == "It is sunny in Paris right now."
    assert session.history.texts() == [
        ("user", "What is the weather in Paris?"),
        ("model", "Let me check the weather for you."),
        ("model", "It is sunny in Paris right now."),
    ]
    assert [t["source"] for t in session.history.summary()] == [
        "realtime",
        "generated",
        "tool_response",
        "generated",
    ]


def test_fast_generation_barge_in_keeps_everything_sent() -> None:
    """Generated 'as fast as possible': all audio was sent before the caller barged in, so
    the server's history holds the whole answer although the caller heard ~1 s of it."""
    session = _session(pace=0.0, scenario=LONG)
    sent(session.receive(setup_frame(), 0.0))
    messages, now = feed(session, caller_speech("And tomorrow?"), 0.0)
    assert "generationComplete" in kinds(messages)
    assert session.generating  # turnComplete waits for real-time playback
    barge, now = feed(session, caller_speech("Wait, stop.", silence_after_ms=0), now + 1.0)
    assert kinds(barge)[:2] == ["interrupted", "turnComplete"]
    model = session.history.turns[1]
    assert model.interrupted and model.text.endswith("no rain at all.")


def test_real_time_barge_in_keeps_only_what_was_sent() -> None:
    session = _session(pace=1.0, scenario=LONG)
    sent(session.receive(setup_frame(), 0.0))
    _, now = feed(session, caller_speech("And tomorrow?"), 0.0)
    started = now
    while now < started + 1.5:  # 1.5 s of the answer go out in real time
        now += 0.02
        sent(session.poll(now))
    barge, now = feed(session, caller_speech("Wait.", silence_after_ms=0), now)
    assert "interrupted" in kinds(barge)
    model = session.history.turns[1]
    assert model.interrupted
    sent_ms = model.parts[0].audio_ms
    assert 1400 <= sent_ms <= 2200  # what was on the wire when VAD fired (+ chunk rounding)
    assert model.text.startswith("Tomorrow") and not model.text.endswith("rain at all.")


def test_barge_in_while_tool_pending_cancels_and_late_response_is_not_history() -> None:
    session = _session()
    sent(session.receive(setup_frame(tools=TOOLS), 0.0))
    messages, now = feed(session, caller_speech("What is the weather in Paris?"), 0.0)
    more, now = run_until_idle(session, now)
    call_id = next(
        m["toolCall"]["functionCalls"][0]["id"] for m in messages + more if "toolCall" in m
    )
    barge, now = feed(session, caller_speech("Never mind.", silence_after_ms=0), now)
    assert kinds(barge)[:3] == ["toolCallCancellation", "interrupted", "turnComplete"]
    assert barge[0]["toolCallCancellation"]["ids"] == [call_id]
    assert sent(session.receive(_tool_response(call_id, "late", sdk=False), now)) == []
    assert session.late_tool_responses == [call_id]
    assert all(t.source != "tool_response" for t in session.history.turns)


def test_manual_activity_and_client_content_turns() -> None:
    session = _session()
    manual = {"realtimeInputConfig": {"automaticActivityDetection": {"disabled": True}}}
    sent(session.receive(setup_frame(**manual), 0.0))
    assert sent(session.receive(json.dumps({"realtime_input": {"activityStart": {}}}), 0.0)) == []
    _, now = feed(session, caller_speech("What is the weather in Paris?", silence_after_ms=0), 0.0)
    assert not session.generating  # no VAD in manual mode
    reply = sent(session.receive(json.dumps({"realtimeInput": {"activityEnd": {}}}), now))
    assert "audio" in kinds(reply + run_until_idle(session, now)[0])

    session = _session()
    sent(session.receive(setup_frame(), 0.0))
    refused = session.receive(json.dumps({"realtimeInput": {"activityStart": {}}}), 0.0)
    assert closed_with(refused) is not None and closed_with(refused).code == 1007  # type: ignore[union-attr]


def test_client_content_seeds_history_and_say_exactly() -> None:
    session = _session()
    sent(session.receive(setup_frame(), 0.0))
    turns = [
        {"role": "user", "parts": [{"text": "Hi"}]},
        {"role": "model", "parts": [{"text": "Hello, how can"}]},
    ]
    assert sent(session.receive(json.dumps({"client_content": {"turns": turns}}), 0.0)) == []
    assert not session.generating
    ask = [{"role": "user", "parts": [{"text": "Say exactly: Good morning."}]}]
    sent(session.receive(json.dumps({"clientContent": {"turns": ask, "turnComplete": True}}), 0.0))
    run_until_idle(session, 0.0)
    assert session.history.texts()[-1] == ("model", "Good morning.")
    assert [t.source for t in session.history.turns][:2] == ["client_content", "client_content"]


def test_resumption_restores_the_sent_history_and_unknown_handles_close() -> None:
    store = ResumptionStore()
    first = _session(resumption=store, scenario=LONG)
    hello = sent(first.receive(setup_frame(sessionResumption={}), 0.0))
    assert kinds(hello) == ["setupComplete", "sessionResumptionUpdate"]
    messages, now = feed(first, caller_speech("And tomorrow?"), 0.0)
    more, now = run_until_idle(first, now)
    updates = [
        m["sessionResumptionUpdate"] for m in messages + more if "sessionResumptionUpdate" in m
    ]
    handle = updates[-1]["newHandle"]
    second = GeminiSimSession(1, scenario=WEATHER, now=now, resumption=store)
    sent(second.receive(setup_frame(sessionResumption={"handle": handle}), now))
    assert second.resumed_from == handle
    assert second.history.texts() == first.history.texts()

    third = GeminiSimSession(2, scenario=WEATHER, now=now, resumption=store)
    closed = closed_with(third.receive(setup_frame(session_resumption={"handle": "nope"}), now))
    assert closed is not None and closed.code == 1007


def test_go_away_then_close_at_the_connection_limit() -> None:
    session = _session(limits=SessionLimits(max_s=60.0, go_away_lead_s=10.0))
    sent(session.receive(setup_frame(), 0.0))
    assert session.next_deadline() == 50.0
    go_away = sent(session.poll(50.0))
    assert go_away == [{"goAway": {"timeLeft": "10s"}}]
    assert session.next_deadline() == 60.0
    closed = closed_with(session.poll(60.0))
    assert closed is not None and closed.code == 1011


@pytest.mark.parametrize(
    "bad",
    [
        "not json",
        "[1]",
        json.dumps({"realtimeInput": {"audio": {"data": "***", "mimeType": "audio/pcm"}}}),
    ],
)
def test_bad_frames_close_with_1007(bad: str) -> None:
    session = _session()
    sent(session.receive(setup_frame(), 0.0))
    closed = closed_with(session.receive(bad, 0.0))
    assert closed is not None and closed.code == 1007


def test_silence_alone_is_no_turn() -> None:
    session = _session()
    sent(session.receive(setup_frame(), 0.0))
    messages, _ = feed(session, silence(2000), 0.0)
    assert messages == [] and session.history.turns == []
