"""S20: the socket drops while an item is streaming, after 2.0 s of it played."""

from __future__ import annotations

from conformance_support import harness

from vocalis.conversation.heard import heard_prefix
from vocalis.conversation.items import MessageItem

LONG = (
    "Let me read you the full terms of the warranty, which covers parts and labour for two "
    "years from the date of purchase, excluding accidental damage and normal wear."
)


async def test_s20_drop_commits_heard_part_reconnects_and_answers_next_turn() -> None:
    scenario = {
        "responses": [
            {
                "say": LONG,
                # Still streaming when the socket dies (every new session replays the script).
                "faults": [
                    {"kind": "stall", "seconds": 60, "after_audio_ms": {"item": 0, "ms": 3000}}
                ],
            }
        ]
    }
    async with harness(scenario) as h:
        h.say("What does the warranty cover?")
        run = await h.response(0, generated=False)
        await h.until(lambda: len(run.playout.pulled) == 1)
        message = run.playout.pulled[0].message
        await h.until(lambda: message.audio_received_ms >= 3000)
        await h.play(2.0)
        first_sim = h.sim
        first_sim.abort()  # the connection drops mid-stream, without a close frame

        done = await run.generation.done
        assert done.status == "disconnected"
        # What had arrived still plays out; then the response settles (nothing hangs).
        await h.play_until(lambda: run.settled, limit_s=10)
        item = h.assistant_messages()[0]
        received = message.audio_received_ms
        assert item.id == message.item_id and item.interrupted
        assert item.played_ms == received
        assert item.text == heard_prefix(LONG, received, received, audio_complete=False)
        assert 0 < len(item.text) < len(LONG)

        # Reconnected: the new provider session holds the history as heard (as text).
        await h.until(lambda: len(h.server.sessions) == 2)
        second_sim = h.server.sessions[1]
        await h.until(
            lambda: any(
                i.role == "assistant" and i.text == item.text for i in second_sim.conversation.items
            )
        )
        # Nothing queued for the dead socket leaked into the new one.
        sent = [e["type"] for e in second_sim.client_events]
        assert "conversation.item.truncate" not in sent and "response.cancel" not in sent

        # The caller's next turn gets an answer on the new connection.
        h.say("Can you repeat that?")
        second = await h.response(1, generated=False)
        await h.until(lambda: bool(second.playout.pulled))
        answer = second.playout.pulled[0].message
        await h.until(lambda: answer.audio_received_ms > 500)
        await h.play(0.5)
        assert h.recorder.played_ms(answer.item_id) > 0
        assert any(isinstance(i, MessageItem) and i.role == "user" for i in h.session.history[2:])
        await h.play_until(lambda: second.settled)
        assert h.session.agent_states == [
            "listening",
            "thinking",
            "speaking",
            "listening",  # the dropped answer settled
            "thinking",
            "speaking",
            "listening",
        ]
