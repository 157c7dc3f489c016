"""S14: the app asks for a reply while a response is still active."""

from __future__ import annotations

from conformance_support import harness

from vocalis.runtime.events import ErrorEvent


async def test_s14_generate_reply_is_queued_never_rejected() -> None:
    scenario = {
        "responses": [
            {
                "say": "First answer, still being generated.",
                "faults": [
                    {"kind": "stall", "seconds": 0.5, "after_audio_ms": {"item": 0, "ms": 300}}
                ],
            },
            {"say": "Second answer."},
        ]
    }
    async with harness(scenario) as h:
        h.say("Tell me something.")
        first = await h.response(0, generated=False)
        assert not first.generation.done.done()
        handle = h.session.generate_reply(instructions="Add a second answer.")
        # Queued: nothing was sent while the first response was active.
        assert len(h.client_events("response.create")) == 0
        second = await h.response(1)
        assert second.handle is handle
        assert first.generation.done.done()
        # The server never saw a conflicting response.create.
        assert not [e for e in h.sim.server_events if e["type"] == "error"]
        assert not [e for e in h.events(ErrorEvent) if e.source == "provider"]
        assert len(h.client_events("response.create")) == 1
        created = [e for e in h.sim.server_events if e["type"] == "response.created"]
        assert len(created) == 2
        # Started without any playback time passing after the first one ended.
        assert h.clock.now() == 0.0
        await h.play_until(lambda: second.settled)
        await handle
        assert handle.done and not handle.interrupted
        # Back to back: no "listening" while the queued reply was pending.
        assert h.session.agent_states[:3] == ["listening", "thinking", "speaking"]
        assert "listening" not in h.session.agent_states[1:-1]
        assert [m.text for m in h.assistant_messages()] == [
            "First answer, still being generated.",
            "Second answer.",
        ]
