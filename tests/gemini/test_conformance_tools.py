"""Gemini tool scenarios: preamble + call + answer, and a call cancelled by a barge-in."""

from __future__ import annotations

import asyncio
from typing import Any

from session_harness_support import TOOL_ROUND_STATES
from vocalis import Agent, function_tool
from vocalis.runtime.events import Interrupted

from .gemini_harness import gemini_harness

PREAMBLE = "Let me check the weather for you."
SCENARIO: dict[str, Any] = {
    "server": {"script_scope": "server"},
    "responses": [
        {
            "user_transcript": "What is the weather in Paris?",
            "items": [{"say": PREAMBLE}, {"call": "get_weather", "arguments": {"city": "Paris"}}],
        },
        {"say": "It is {result[sky]} in Paris right now."},
    ],
}
# The follow-up never happens when the caller cancels: their turn is the next one answered.
CANCELLED = {
    "server": {"script_scope": "server"},
    "responses": [
        SCENARIO["responses"][0],
        {"user_transcript": "Never mind.", "say": "No problem."},
    ],
}


def _agent(gate: asyncio.Event | None = None) -> tuple[Agent, list[str]]:
    ran: list[str] = []

    @function_tool
    async def get_weather(city: str) -> dict[str, object]:
        """Current weather for a city.

        Args:
            city: The city name.
        """
        ran.append(city)
        if gate is not None:
            await gate.wait()
        return {"city": city, "sky": "sunny"}

    return Agent("You are a weather assistant.", tools=[get_weather]), ran


async def test_preamble_tool_call_and_answer_match_on_both_sides() -> None:
    agent, ran = _agent()
    async with gemini_harness(SCENARIO, agent=agent) as h:
        h.say("What is the weather in Paris?")
        first = await h.response(0)
        await h.play_until(lambda: first.settled)
        follow_up = await h.response(1)
        await h.play_until(lambda: follow_up.settled)
        await h.settled()
        assert ran == ["Paris"]
        assert h.local_texts() == [
            ("user", "What is the weather in Paris?"),
            ("model", PREAMBLE),
            ("model", "It is sunny in Paris right now."),
        ]
        (call,) = h.calls()
        (output,) = h.outputs()
        assert output.call_id == call.call_id
        # Nothing unheard: no re-seed, one connection, and the service holds the same words.
        assert h.provider.reseeds == 0 and len(h.sims.connections) == 1
        assert h.service_texts() == h.local_texts()
        sent = h.serving().session.client_messages
        assert sum("toolResponse" in m for m in sent) == 1
        # Thinking from the call to the answer, never listening between (heard contract 6).
        assert h.session.agent_states == TOOL_ROUND_STATES


async def test_barge_in_during_the_tool_cancels_it_and_no_output_is_sent() -> None:
    gate = asyncio.Event()
    agent, ran = _agent(gate)
    async with gemini_harness(CANCELLED, agent=agent) as h:
        h.say("What is the weather in Paris?")
        first = await h.response(0)
        await h.until(lambda: ran == ["Paris"])
        await h.play_until(
            lambda: h.recorder.played_ms(first.playout.pulled[0].message.item_id) >= 600
        )
        h.start_talking("Never mind.")
        await h.event(Interrupted)
        old = h.sims.connections[0]
        await old.wait_for(lambda s: bool(s.cancelled_call_ids))
        gate.set()  # the tool finishes after the model cancelled its call
        await h.until(lambda: first.settled)
        h.silence(900)
        await h.until(lambda: h.service_texts()[-1:] == [("model", "No problem.")])
        # The cancelled call's output never reached any Gemini session.
        for conn in h.sims.connections:
            assert not any(
                "toolResponse" in m or "tool_response" in m for m in conn.session.client_messages
            )
            assert conn.session.late_tool_responses == []
        # The tool did run: its output stays in the heard history (the runtime keeps it) and
        # reaches the fresh session as history, never as a toolResponse to the cancelled call.
        (output,) = h.outputs()
        assert output.id == f"out_{output.call_id}"
        seed = h.serving().session.client_messages[1]["clientContent"]["turns"]
        assert any("functionResponse" in part for turn in seed for part in turn["parts"])
        preamble = next(m for m in h.assistant_messages() if m.interrupted)
        assert PREAMBLE.startswith(preamble.text) and preamble.text != PREAMBLE
        assert h.provider.reseeds == 1
        assert ("model", preamble.text) in h.service_texts()
