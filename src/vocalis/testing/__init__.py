"""Test agents in milliseconds: a real call against the embedded sim, in virtual time.

    from vocalis.testing import AgentTest

    async def test_weather() -> None:
        async with AgentTest(agent, scenario=WEATHER) as call:
            turn = await call.user_says("What's the weather in London?")
            turn.expect_tool_call("get_weather", city="London")
            turn.expect_said("16 degrees")

`AgentTest` runs the agent on the real runtime, the real OpenAI client and the local
sim-server (pace 0) with a `ManualClock` for playback; `Transcript` holds what happened in a
turn (or the whole call) with `expect_*` assertions. The pytest plugin (`vocalis.testing.plugin`,
registered on install) adds the `agent_test` fixture. Guide: docs/testing-with-sim-server.md.
"""

from __future__ import annotations

from vocalis.testing.call import AgentTest, StartCall, default_options
from vocalis.testing.expect import SpokenMessage, ToolCallRecord, Transcript

__all__ = [
    "AgentTest",
    "SpokenMessage",
    "StartCall",
    "ToolCallRecord",
    "Transcript",
    "default_options",
]
