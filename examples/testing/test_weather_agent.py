"""Testing an agent offline: the sim-server plays the model, a WAV plays the caller.

Run with `uv run pytest examples/testing -q` (about 20 s: the call runs in real time).
Explained step by step in docs/testing-with-sim-server.md.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import numpy as np

from vocalis import AgentSession, AgentSessionOptions
from vocalis.audio.espeak import synthesize
from vocalis.audio.frame import AudioFrame
from vocalis.providers.openai import OpenAIRealtimeModel
from vocalis.sim.server import SimServer
from vocalis.transports.file import FileTransport

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))
from assistant_with_tools import agent  # noqa: E402  (the agent under test)

RATE = 16000


def caller_audio(lines: list[tuple[float, str]], total_s: float) -> AudioFrame:
    """The caller's side of the call: each line spoken (espeak-ng) at its start time."""
    audio = np.zeros(int(total_s * RATE), dtype=np.int16)
    for start_s, text in lines:
        speech = synthesize(text, voice="en-us+f3", sample_rate=RATE).samples
        at = int(start_s * RATE)
        audio[at : at + speech.shape[0]] = speech
    return AudioFrame(audio, RATE)


async def call(
    scenario: dict[str, Any], lines: list[tuple[float, str]], total_s: float
) -> tuple[list[dict[str, Any]], Any]:
    """Run one call; returns the heard history and the server's conversation items.

    `scenario` is what the simulated model answers, one entry per response (a tool follow-up
    is a response too); the full schema is in docs/sim-server.md.
    """
    async with SimServer(scenario=scenario, pace=2.0) as server:
        model = OpenAIRealtimeModel(
            "gpt-realtime", api_key="test", base_url=server.url.removesuffix("/realtime")
        )
        transport = FileTransport(caller_audio(lines, total_s), idle_hangup_s=2.0)
        options = AgentSessionOptions(input_transcription_model="gpt-4o-mini-transcribe")
        session = AgentSession(model, transport, options=options)
        await session.start(agent)
        await transport.wait_closed()  # the WAV ended and the agent went quiet
        # A last answer may still be playing: wait for the agent to be back to listening.
        while session.agent_state != "listening":  # noqa: ASYNC110 - no event for "idle"
            await asyncio.sleep(0.05)
        await session.aclose()
        await transport.aclose()
        return session.history_json()["items"], server.sessions[0].conversation.items


WEATHER = {
    "responses": [
        {
            "user_transcript": "What's the weather in London?",
            "items": [
                {"say": "One moment, I'll look that up."},
                {"call": "get_weather", "arguments": {"city": "London"}},
            ],
        },
        # The follow-up after the tool output; {result[...]} reads the output as JSON.
        {"say": "It is {result[sky]} in London, {result[temperature_c]} degrees."},
    ]
}

LONG_ANSWER = {
    "responses": [
        {
            "user_transcript": "Will it rain tomorrow?",
            "say": "Tomorrow starts with light rain in the morning, then the clouds break up "
            "around noon and the afternoon stays dry and mild with a gentle southern breeze.",
        },
        {"user_transcript": "Thanks, that's all.", "say": "You're welcome, goodbye!"},
    ]
}


def test_weather_question_uses_the_tool() -> None:
    lines = [(0.5, "What's the weather in London?")]
    items, _ = asyncio.run(call(WEATHER, lines, total_s=4.0))
    calls = [i for i in items if i["type"] == "function_call"]
    assert [c["name"] for c in calls] == ["get_weather"]
    answer = items[-1]
    assert answer["role"] == "assistant" and "16 degrees" in answer["text"]
    assert not answer["interrupted"]


def test_barge_in_keeps_only_what_was_heard() -> None:
    lines = [(0.5, "Will it rain tomorrow?"), (5.0, "Thanks, that's all.")]
    items, server_items = asyncio.run(call(LONG_ANSWER, lines, total_s=8.0))
    [cut] = [i for i in items if i.get("interrupted")]
    # The history holds the words the caller heard, not the whole generated answer...
    assert cut["text"] and cut["text"] != cut["generated_text"]
    assert 0 < cut["played_ms"] < cut["generated_ms"]
    # ...and the model's own copy was truncated at the same point.
    [remote] = [i for i in server_items if i.id == cut["id"]]
    assert remote.truncated_at_ms == int(cut["played_ms"])
    assert items[-1]["text"] == "You're welcome, goodbye!"
