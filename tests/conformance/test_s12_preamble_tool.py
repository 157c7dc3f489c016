"""S12: preamble + tool call; the tool returns while the preamble still plays."""

from __future__ import annotations

from conformance_support import harness

from session_harness_support import TOOL_ROUND_STATES
from vocalis.runtime.agent import Agent
from vocalis.runtime.tools import function_tool
from vocalis.transports.base import PlayoutStatus

PREAMBLE = "Let me check that for you."
ANSWER = "It is eighteen degrees and sunny in Paris."


async def test_s12_follow_up_waits_for_the_preamble_and_output_is_sent_once() -> None:
    scenario = {
        "responses": [
            {
                "items": [
                    {"say": PREAMBLE},
                    {"call": "get_weather", "arguments": {"city": "Paris"}, "call_id": "call_s12"},
                ]
            },
            {"say": ANSWER},
        ]
    }
    async with harness(scenario, start=False) as h:
        calls: list[str] = []
        finished_at: list[float] = []

        @function_tool
        async def get_weather(city: str) -> dict[str, object]:
            """Current weather.

            Args:
                city: City name.
            """
            calls.append(city)
            await h.clock.sleep(0.4)
            finished_at.append(h.clock.now())
            return {"city": city, "temp_c": 18}

        await h.session.start(Agent("Weather agent.", tools=[get_weather]))
        h.say("What's the weather in Paris?")
        first = await h.response(0)
        preamble = first.playout.pulled[0].message
        await h.play_until(lambda: first.playout_finished)
        result = first.playout.pulled[0].result
        assert result is not None and result.status is PlayoutStatus.FULL
        assert result.ended_at is not None
        assert finished_at and finished_at[0] < result.ended_at  # tool done mid-preamble

        follow = await h.response(1)
        assert follow.handle.kind == "tool_followup"
        # Requested only once the preamble had played to its end (not cut, P19).
        assert follow.requested_at is not None and follow.requested_at >= result.ended_at
        await h.play_until(lambda: follow.settled)

        assert calls == ["Paris"]
        outputs = [
            e
            for e in h.client_events("conversation.item.create")
            if e["item"]["type"] == "function_call_output"
        ]
        assert len(outputs) == 1 and outputs[0]["item"]["call_id"] == "call_s12"
        assert h.assistant_messages()[0].text == PREAMBLE
        assert not h.assistant_messages()[0].interrupted
        answer = h.assistant_messages()[1]
        assert answer.text == ANSWER
        assert follow.playout.first_played_at is not None
        gap = follow.playout.first_played_at - result.ended_at
        assert 0 <= gap <= 0.3
        [call] = h.calls()
        [output] = h.outputs()
        assert call.call_id == output.call_id == "call_s12"
        ids = [i.id for i in h.session.history]
        assert ids.index(preamble.item_id) < ids.index(call.id) < ids.index(output.id)
        assert ids.index(output.id) < ids.index(answer.id)
        assert h.session.agent_states == TOOL_ROUND_STATES
