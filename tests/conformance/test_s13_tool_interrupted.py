"""S13: a 2 s tool; the caller barges in 0.5 s into the preamble."""

from __future__ import annotations

from conformance_support import harness

from vocalis.runtime.agent import Agent
from vocalis.runtime.events import Interrupted, ToolCallFinished
from vocalis.runtime.tools import function_tool


async def test_s13_output_delivered_once_no_reply_no_reexecution_no_deadlock() -> None:
    scenario = {
        "responses": [
            {
                "items": [
                    {"say": "Okay, I am booking a table for you now."},
                    {"call": "book_table", "arguments": {"seats": 4}, "call_id": "call_s13"},
                ]
            },
            {"say": "Sorry, go ahead."},
            {"say": "Anything else?"},
        ]
    }
    async with harness(scenario, start=False) as h:
        bookings: list[int] = []

        @function_tool
        async def book_table(seats: int) -> str:
            """Book a table."""
            bookings.append(seats)
            await h.clock.sleep(2.0)
            return "booked"

        await h.session.start(Agent("Booking agent.", tools=[book_table]))
        h.say("Book a table for four.")
        first = await h.response(0)
        preamble = first.playout.pulled[0].message
        await h.play_until(lambda: h.segment_started(preamble.item_id))
        await h.play(0.5)
        h.start_talking("Actually wait.")
        await h.event(Interrupted)
        h.silence()
        second = await h.response(1)  # the server answers the caller's new turn
        await h.play_until(lambda: second.settled and first.settled)
        await h.event(ToolCallFinished)
        await h.until(lambda: first.settled)
        await h.play_until(
            lambda: any(
                e["item"]["type"] == "function_call_output"
                for e in h.client_events("conversation.item.create")
            ),
            limit_s=5,
        )

        outputs = [
            e
            for e in h.client_events("conversation.item.create")
            if e["item"]["type"] == "function_call_output"
        ]
        assert [o["item"]["call_id"] for o in outputs] == ["call_s13"]
        # No follow-up reply for the interrupted turn: only the caller's turns got responses.
        assert all(run.handle.kind == "server" for run in h.runs)
        assert [c.call_id for c in h.calls()] == ["call_s13"]
        assert [o.call_id for o in h.outputs()] == ["call_s13"]
        assert h.sim.conversation.get(h.outputs()[0].id) is not None

        # A later turn gets audio; the tool is not run again.
        h.say("No, that's all.")
        third = await h.response(2)
        await h.play_until(lambda: third.settled)
        assert third.playout.pulled[0].result is not None
        assert h.recorder.played_ms(third.playout.pulled[0].message.item_id) > 0
        assert bookings == [4]
        assert h.session.agent_state == "listening"
        # Back to listening at the barge-in (no follow-up is coming for the interrupted
        # turn, so its running tool is not "thinking"), then the caller's two turns.
        assert h.session.agent_states == [
            "listening",
            "thinking",
            "speaking",
            "listening",
            "thinking",
            "speaking",
            "listening",
            "thinking",
            "speaking",
            "listening",
        ]
