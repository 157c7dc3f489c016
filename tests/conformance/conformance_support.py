"""Harness for the conformance scenarios: the real pieces, with time in the test's hands.

`AgentSession` talks to the real `vocalis.sim` server (pace 0: every response is generated as
fast as the socket allows) through the real OpenAI client; the caller side is a
`MemoryTransport` whose playback clock is a `ManualClock`. Nothing plays until the test
advances the clock, so "the caller heard 300 ms of item 2" is exact and independent of the
machine's speed. Waits on the network use generous real-time timeouts and assert on state,
never on elapsed wall-clock time.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from session_harness_support import RATE as RATE  # re-exported for the scenarios
from session_harness_support import FrameRecorder, SimHarness
from session_harness_support import server_vad as server_vad
from session_harness_support import silence as silence
from session_harness_support import speech as speech
from vocalis.providers.openai.realtime import OpenAIRealtimeModel
from vocalis.runtime.agent import Agent
from vocalis.runtime.options import AgentSessionOptions
from vocalis.runtime.session import AgentSession
from vocalis.runtime.tools import function_tool
from vocalis.sim.server import SimServer
from vocalis.transports.memory import MemoryTransport
from vocalis.utils.clock import ManualClock

FAKE_KEY = "sk-test-conformance-0123456789"


Harness = SimHarness  # the shared harness (tests/session_harness_support.py)


def weather_agent(
    clock: ManualClock, *, tool_s: float = 0.0, ran: list[str] | None = None
) -> Agent:
    """An agent with one tool, `get_weather(city)`, that takes `tool_s` of session clock and
    records each city it ran for in `ran`."""

    @function_tool
    async def get_weather(city: str) -> dict[str, object]:
        """Current weather.

        Args:
            city: City name.
        """
        if ran is not None:
            ran.append(city)
        await clock.sleep(tool_s)
        return {"city": city, "temp_c": 18}

    return Agent("Weather agent.", tools=[get_weather])


def check_provider_side(h: Harness) -> None:
    """The provider conversation on every connection the sim saw keeps the tool and audio rules.

    * each function call has exactly one output, after it, and no output lacks its call
      (checked on the last connection: earlier ones died mid-turn by design);
    * the caller's audio turns stay audio: every item the server committed from the input
      buffer is still there as `input_audio` (or was never deleted), and no client `create`
      ever re-made one as text under its id.
    """
    sims = h.server.sessions
    last = sims[-1].conversation.items
    positions = {item.id: i for i, item in enumerate(last)}
    calls = {i.call_id: positions[i.id] for i in last if i.type == "function_call"}
    outputs: dict[str | None, list[int]] = {}
    for item in last:
        if item.type == "function_call_output":
            outputs.setdefault(item.call_id, []).append(positions[item.id])
    for call_id, at in calls.items():
        assert len(outputs.get(call_id, [])) == 1, f"call {call_id}: outputs {outputs}"
        assert outputs[call_id][0] > at, f"output of {call_id} before its call"
    assert set(outputs) <= set(calls), f"outputs without their call: {set(outputs) - set(calls)}"
    for sim in sims:
        committed = [
            e["item_id"] for e in sim.server_events if e["type"] == "input_audio_buffer.committed"
        ]
        deleted = {
            e["item_id"] for e in sim.client_events if e["type"] == "conversation.item.delete"
        }
        created = {
            e["item"].get("id")
            for e in sim.client_events
            if e["type"] == "conversation.item.create"
        }
        for item_id in committed:
            assert item_id not in deleted, f"caller audio {item_id} deleted"
            assert item_id not in created, f"caller audio {item_id} re-created as text"
            if not sim.closed:
                kept = sim.conversation.get(item_id)
                assert kept is not None and kept.content[0]["type"] == "input_audio"


@contextlib.asynccontextmanager
async def harness(
    scenario: dict[str, Any],
    *,
    agent: Agent | None = None,
    options: AgentSessionOptions | None = None,
    start: bool = True,
    op_timeout_s: float = 10.0,
) -> AsyncIterator[Harness]:
    clock = ManualClock()
    async with SimServer(scenario=scenario, pace=0.0) as server:
        model = OpenAIRealtimeModel(
            api_key=FAKE_KEY,
            base_url=server.url.removesuffix("/realtime"),
            op_timeout_s=op_timeout_s,
        )
        recorder = FrameRecorder()
        transport = MemoryTransport(clock, on_frame=recorder)
        session = AgentSession(
            model,
            transport,
            clock=clock,
            options=options or AgentSessionOptions(turn_detection=server_vad()),
        )
        h = SimHarness(server, session, transport, clock, recorder)
        try:
            if start:
                await session.start(agent or Agent("You are a test agent."))
            yield h
        finally:
            await session.aclose()
            await transport.aclose()
