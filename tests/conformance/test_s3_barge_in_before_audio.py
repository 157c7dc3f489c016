"""S3: barge-in after output_item.added / content_part.added but before any audio delta."""

from __future__ import annotations

from conformance_support import harness, server_vad

from vocalis.runtime.events import ErrorEvent, Interrupted
from vocalis.runtime.options import AgentSessionOptions


async def test_s3_barge_in_before_first_audio_deletes_never_truncates_at_zero() -> None:
    scenario = {
        "responses": [
            {
                "say": "This answer is stuck before its first audio byte.",
                "faults": [
                    {"kind": "stall", "seconds": 30, "after_event": "response.content_part.added"}
                ],
            },
            {"say": "Yes?"},
        ]
    }
    # vocalis decides on interruptions (server VAD reports speech but does not cancel).
    options = AgentSessionOptions(turn_detection=server_vad(interrupt_response=False))
    async with harness(scenario, options=options) as h:
        h.say("Hello there.")
        run = await h.response(0, generated=False)
        await h.until(lambda: len(run.playout.pulled) == 1)
        (pulled,) = run.playout.pulled
        item_id = pulled.message.item_id
        await h.until(lambda: h.server_has(item_id))
        await h.play(0.05)
        assert pulled.message.audio_received_ms == 0

        h.start_talking("Hey.")
        await h.event(Interrupted)
        await h.until(lambda: run.settled)
        h.silence()
        await h.until(lambda: not h.server_has(item_id))

        assert h.client_events("conversation.item.truncate") == []
        assert [d["item_id"] for d in h.client_events("conversation.item.delete")] == [item_id]
        assert len(h.client_events("response.cancel")) == 1
        assert all(m.id != item_id for m in h.assistant_messages())
        assert not [e for e in h.events(ErrorEvent) if e.source == "provider"]
        assert not [e for e in h.sim.server_events if e["type"] == "error"]
        # Never spoke: listening -> thinking -> listening.
        assert h.session.agent_states[:3] == ["listening", "thinking", "listening"]
