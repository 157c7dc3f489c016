"""S7: server VAD with interrupt_response: the server cancels, the client truncates only."""

from __future__ import annotations

from conformance_support import harness

from vocalis.runtime.events import Interrupted

TEXT = (
    "Our opening hours are from eight in the morning until eight in the evening on weekdays, "
    "and from ten until four on weekends and public holidays."
)


async def test_s7_server_cancels_client_truncates_without_cancel() -> None:
    scenario = {
        "responses": [
            {
                "say": TEXT,
                # Still generating when the caller speaks (case d1 of the protocol notes).
                "faults": [
                    {"kind": "stall", "seconds": 30, "after_audio_ms": {"item": 0, "ms": 3000}}
                ],
            },
            {"say": "Yes?"},
        ]
    }
    async with harness(scenario) as h:
        h.say("When are you open?")
        run = await h.response(0, generated=False)
        await h.until(lambda: len(run.playout.pulled) == 1)
        message = run.playout.pulled[0].message
        await h.until(lambda: message.audio_received_ms >= 3000)
        await h.play_until(lambda: h.segment_started(message.item_id))
        await h.play(1.2)
        frames_before = len(h.recorder.pieces_of(message.item_id))
        h.say("Excuse me.")
        await h.event(Interrupted)
        # Playback stopped within the frame: not one more frame plays.
        await h.play(0.1)
        assert len(h.recorder.pieces_of(message.item_id)) == frames_before
        done = await run.generation.done
        assert (done.status, done.reason) == ("cancelled", "turn_detected")
        await h.until(lambda: run.settled)

        (truncate,) = h.client_events("conversation.item.truncate")
        assert truncate["item_id"] == message.item_id
        assert abs(truncate["audio_end_ms"] - 1200) <= 20
        assert h.client_events("response.cancel") == []
        item = h.assistant_messages()[0]
        assert item.interrupted and item.played_ms == truncate["audio_end_ms"]
        assert h.session.agent_states[:4] == ["listening", "thinking", "speaking", "listening"]
