"""S4: the playback clock runs past the audio received for the item (jitter-buffer lead)."""

from __future__ import annotations

from conformance_support import harness

from vocalis.runtime.events import ErrorEvent, Interrupted


async def test_s4_truncate_is_clamped_to_received_audio() -> None:
    scenario = {
        # The server measures audio coarsely (50 ms steps), like the real API in P5/P6.
        "server": {"truncate_granularity_ms": 50},
        "responses": [
            {
                "say": (
                    "Here is a long explanation of the billing cycle, the late fee policy, "
                    "and what happens when a payment bounces at the end of the month."
                ),
                "faults": [
                    {"kind": "stall", "seconds": 30, "after_audio_ms": {"item": 0, "ms": 3700}}
                ],
            },
            {"say": "Go on."},
        ],
    }
    async with harness(scenario) as h:
        h.say("Explain the billing.")
        run = await h.response(0, generated=False)
        await h.until(lambda: len(run.playout.pulled) == 1)
        message = run.playout.pulled[0].message
        await h.until(lambda: message.audio_received_ms >= 3700)
        received = message.audio_received_ms
        # The clock runs 60 ms past everything received (the sink underruns meanwhile).
        await h.play_until(lambda: h.clock.now() * 1000 >= received + 60)
        h.start_talking("Hold on.")
        await h.event(Interrupted)
        await h.until(lambda: run.settled)
        h.silence()

        # Never past the audio the provider sent (the sink cannot play what it never got, and
        # the ledger clamps anyway); at the tail of the cancelled item the cut stays on the
        # server's 50 ms accounting, so there is no "already shorter than" error — and the
        # cut is sent, so the server drops transcript words that ran ahead of the audio.
        truncates = h.client_events("conversation.item.truncate")
        assert len(truncates) == 1
        assert truncates[0]["audio_end_ms"] <= received
        assert received - truncates[0]["audio_end_ms"] < 50
        assert not [e for e in h.sim.server_events if e["type"] == "error"]
        assert not [e for e in h.events(ErrorEvent) if e.operation == "truncate"]
        item = h.assistant_messages()[0]
        assert item.id == message.item_id
        assert item.interrupted and item.played_ms is not None
        assert item.played_ms <= received
        assert h.session.agent_states[:4] == ["listening", "thinking", "speaking", "listening"]
