"""S16: the server rejects a truncate (`invalid_request_error`); the session carries on."""

from __future__ import annotations

import math

from conformance_support import harness

from vocalis.runtime.events import ErrorEvent, Interrupted


async def test_s16_rejected_truncate_is_not_fatal() -> None:
    scenario = {
        # Coarse server accounting (300 ms steps, coarser than the client's 50 ms tail margin):
        # an honest clamp can still be "longer" than the server says.
        "server": {"truncate_granularity_ms": 300},
        "responses": [
            {
                "say": "A reply whose audio the server measures coarsely, cut early.",
                "faults": [
                    {"kind": "stall", "seconds": 30, "after_audio_ms": {"item": 0, "ms": 770}}
                ],
            },
            {"say": "I am still here."},
        ],
    }
    async with harness(scenario) as h:
        h.say("Hello?")
        run = await h.response(0, generated=False)
        await h.until(lambda: len(run.playout.pulled) == 1)
        message = run.playout.pulled[0].message
        await h.until(lambda: message.audio_received_ms >= 770)
        received = math.floor(message.audio_received_ms)
        server_counts = received - received % 300
        # The client keeps tail cuts on 50 ms steps; play a whole number of 20 ms frames
        # landing between the server's (coarser) count and that: an honest truncate the
        # server will still reject.
        client_safe = received - received % 50
        frames = server_counts // 20 + 1
        assert server_counts < frames * 20 < client_safe, (server_counts, received)
        await h.play((frames - 1) * 0.02)  # the first frame plays at t=0
        h.start_talking("Sorry.")
        await h.event(Interrupted)
        await h.until(lambda: run.settled)
        error = await h.event(ErrorEvent, lambda e: e.operation == "truncate")
        assert error.recoverable
        assert any(
            e["type"] == "error" and e["error"]["type"] == "invalid_request_error"
            for e in h.sim.server_events
        )
        # The client retried at the length the server named, so the server's copy is cut at
        # its own audio (all of which was heard): no unheard words stay in its memory.
        await h.until(
            lambda: any(e["type"] == "conversation.item.truncated" for e in h.sim.server_events)
        )
        cuts = h.client_events("conversation.item.truncate")
        assert [c["audio_end_ms"] for c in cuts] == [frames * 20, server_counts]
        h.silence()

        second = await h.response(1)
        await h.play_until(lambda: second.settled)
        assert h.recorder.played_ms(second.playout.pulled[0].message.item_id) > 0
        assert h.assistant_messages()[-1].text == "I am still here."
        assert h.session.agent_state == "listening"
        assert not [e for e in h.events(ErrorEvent) if not e.recoverable]
        assert h.session.agent_states == [
            "listening",
            "thinking",
            "speaking",
            "listening",
            "thinking",
            "speaking",
            "listening",
        ]
