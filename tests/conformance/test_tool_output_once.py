"""A tool output whose create timed out but went through is not created twice.

The sim keeps the output but loses its acknowledgement (`server.lost_item_acks`): the
client's create times out (real time, 0.3 s here). The runtime chose the output item's id
(`out_<call_id>`), so the provider asks for that id before creating it again, finds it, and
takes the create as done: the tool ran once, the output exists once on the provider and in
the history under the runtime's id, and the follow-up answers the caller.
"""

from __future__ import annotations

from conformance_support import check_provider_side, harness, weather_agent

from vocalis.runtime.events import ErrorEvent

ANSWER = "It is eighteen degrees in Paris."
SCENARIO = {
    "server": {"lost_item_acks": [{"item_type": "function_call_output"}]},
    "responses": [
        {"items": [{"call": "get_weather", "arguments": {"city": "Paris"}, "call_id": "call_w"}]},
        {"say": ANSWER},
    ],
}


async def test_an_output_whose_ack_was_lost_exists_once_and_the_tool_ran_once() -> None:
    async with harness(SCENARIO, start=False, op_timeout_s=0.3) as h:
        ran: list[str] = []
        await h.session.start(weather_agent(h.clock, ran=ran))
        h.say("What's the weather in Paris?")
        await h.play_until(lambda: len(h.runs) > 1 and h.runs[1].settled)
        await h.settled()

        assert ran == ["Paris"]
        assert h.assistant_messages()[-1].text == ANSWER
        # The ack really was lost.
        assert any("lost (scenario lost_item_acks)" in note for note in h.sim.notes)
        # Once on the provider, after its call; once in the history, under the runtime's id.
        outputs = [i for i in h.server_items() if i.type == "function_call_output"]
        assert [(i.id, i.call_id) for i in outputs] == [("out_call_w", "call_w")]
        check_provider_side(h)
        # The client asked for the item instead of creating it again.
        creates = [
            item["id"] for item in h.created_items() if item["type"] == "function_call_output"
        ]
        assert creates == ["out_call_w"]
        assert [e["item_id"] for e in h.client_events("conversation.item.retrieve")] == [
            "out_call_w"
        ]
        assert [o.id for o in h.outputs()] == ["out_call_w"]
        assert not [e for e in h.events(ErrorEvent) if e.operation == "tool_output"]
