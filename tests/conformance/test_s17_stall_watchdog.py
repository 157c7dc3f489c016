"""S17: the response starts, announces an item, then produces nothing."""

from __future__ import annotations

from conformance_support import harness, server_vad

from vocalis.runtime.events import ErrorEvent
from vocalis.runtime.options import AgentSessionOptions


async def test_s17_stalled_response_is_cancelled_and_session_recovers() -> None:
    scenario = {
        "responses": [
            {
                "say": "This will never be heard.",
                "faults": [
                    {"kind": "stall", "seconds": 60, "after_event": "response.output_item.added"}
                ],
            },
            {"say": "Back again."},
        ]
    }
    options = AgentSessionOptions(turn_detection=server_vad(), stall_timeout_s=3.0)
    async with harness(scenario, options=options) as h:
        h.say("Are you there?")
        run = await h.response(0, generated=False)
        await h.until(lambda: len(run.playout.pulled) == 1)
        item_id = run.playout.pulled[0].message.item_id
        assert h.session.agent_states[-1] == "thinking"
        await h.play(2.9)
        assert not run.stalled
        await h.play(0.2)
        stall = await h.event(ErrorEvent, lambda e: e.code == "response_stalled")
        assert stall.source == "watchdog"
        await h.until(lambda: run.settled)

        assert len(h.client_events("response.cancel")) == 1
        assert (await run.generation.done).status == "cancelled"
        assert h.session.agent_state == "listening"  # without the caller saying anything
        # Never audible: gone from the provider (deleted, or never added to its conversation).
        await h.until(lambda: not h.server_has(item_id))
        assert h.client_events("conversation.item.truncate") == []
        assert h.assistant_messages() == []

        handle = h.session.generate_reply()
        second = await h.response(1)
        await h.play_until(lambda: second.settled)
        await handle
        assert h.assistant_messages()[-1].text == "Back again."
        assert h.session.agent_states == [
            "listening",
            "thinking",
            "listening",
            "thinking",
            "speaking",
            "listening",
        ]
