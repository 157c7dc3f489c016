"""A tool output whose create timed out but went through is not created twice.

The sim keeps the output but loses its acknowledgement (`server.lost_item_acks`): the
client's create times out (real time, 0.3 s here). The runtime chose the output item's id
(`out_<call_id>`), so the provider asks for that id before creating it again, finds it, and
takes the create as done: the tool ran once, the output exists once on the provider and in
the history under the runtime's id, and the follow-up answers the caller.
"""

from __future__ import annotations

from conformance_support import Harness, check_provider_side, harness, weather_agent

from vocalis.runtime.events import ErrorEvent, ProviderReconnected, ResponseStarted

ANSWER = "It is eighteen degrees in Paris."
SCENARIO = {
    "server": {"lost_item_acks": [{"item_type": "function_call_output"}]},
    "responses": [
        {"items": [{"call": "get_weather", "arguments": {"city": "Paris"}, "call_id": "call_w"}]},
        {"say": ANSWER},
    ],
}


async def _ask_and_check_once(h: Harness) -> None:
    """The caller asks; the tool runs once, the follow-up answers, and the output exists
    once: on the provider after its call, created once there, once in the history under
    the runtime's id."""
    ran: list[str] = []
    await h.session.start(weather_agent(h.clock, ran=ran))
    h.say("What's the weather in Paris?")
    await h.play_until(lambda: len(h.runs) > 1 and h.runs[1].settled)
    await h.settled()

    assert ran == ["Paris"]
    assert h.assistant_messages()[-1].text == ANSWER
    outputs = [i for i in h.server_items() if i.type == "function_call_output"]
    assert [(i.id, i.call_id) for i in outputs] == [("out_call_w", "call_w")]
    check_provider_side(h)
    creates = [item["id"] for item in h.created_items() if item["type"] == "function_call_output"]
    assert creates == ["out_call_w"]
    assert [o.id for o in h.outputs()] == ["out_call_w"]
    assert not [e for e in h.events(ErrorEvent) if e.operation == "tool_output"]


async def test_an_output_whose_ack_was_lost_exists_once_and_the_tool_ran_once() -> None:
    async with harness(SCENARIO, start=False, op_timeout_s=0.3) as h:
        await _ask_and_check_once(h)
        # The ack really was lost; the client asked for the item instead of creating it again.
        assert any("lost (scenario lost_item_acks)" in note for note in h.sim.notes)
        assert [e["item_id"] for e in h.client_events("conversation.item.retrieve")] == [
            "out_call_w"
        ]
        assert not [e for e in h.events(ErrorEvent) if e.operation == "tool_output"]


LOST_RETRIEVE = {
    "server": {
        "lost_item_acks": [{"item_type": "function_call_output"}],
        "lost_retrieves": [{"occurrence": 1}],
    },
    "responses": SCENARIO["responses"],
}


async def test_an_output_whose_create_and_retrieve_both_timed_out_is_not_created_again() -> None:
    """The create's ack and the answer to the first retrieve are both lost. Nothing says
    the item is missing, so it is never created again (the real service would append a
    second output under the reused id): the client asks once more, finds it, and the output
    reaches the provider once."""
    async with harness(LOST_RETRIEVE, start=False, op_timeout_s=0.3) as h:
        await _ask_and_check_once(h)
        assert any("lost (scenario lost_retrieves)" in note for note in h.sim.notes)
        assert len(h.server.sessions) == 1  # a late answer is no reason to reconnect
        assert [e["item_id"] for e in h.client_events("conversation.item.retrieve")] == [
            "out_call_w",
            "out_call_w",
        ]


DEAF = {
    "server": {
        "script_scope": "server",
        "lost_item_acks": [{"item_type": "function_call_output", "connection": 1}],
        "lost_retrieves": [{"occurrence": n, "connection": 1} for n in (1, 2, 3)],
    },
    "responses": SCENARIO["responses"],
}


async def test_an_output_the_server_never_confirms_nor_denies_is_created_once_elsewhere() -> None:
    """The server answers no retrieve of the output: whether it holds it cannot be known on
    that socket, and creating it again could make two. The client drops the socket; the
    output is created once in the fresh provider session (it was never in the old one's
    heard history), and the follow-up answers there."""
    async with harness(DEAF, start=False, op_timeout_s=0.3) as h:
        ran: list[str] = []
        await h.session.start(weather_agent(h.clock, ran=ran))
        h.say("What's the weather in Paris?")
        # Real time (the playback clock frozen): the timeouts, the reconnect, the re-sync.
        await h.event(ProviderReconnected)
        await h.event(ResponseStarted, lambda e: e.origin == "tool_followup")
        await h.play_until(lambda: bool(h.assistant_messages()))
        await h.settled()

        assert ran == ["Paris"]
        assert h.assistant_messages()[-1].text == ANSWER
        first, _fresh = h.server.sessions
        first_creates = [
            item["id"] for item in h.created_items(first) if item["type"] == "function_call_output"
        ]
        assert first_creates == ["out_call_w"]  # never a second create on the deaf socket
        assert [e.reason for e in h.events(ProviderReconnected)] == ["unresponsive"]
        outputs = [i for i in h.server_items() if i.type == "function_call_output"]
        assert [(i.id, i.call_id) for i in outputs] == [("out_call_w", "call_w")]
        check_provider_side(h)
        assert [o.id for o in h.outputs()] == ["out_call_w"]
