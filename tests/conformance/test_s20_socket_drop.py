"""S20: the socket drops while an item is streaming, after 2.0 s of it played.

A disconnect is not a barge-in: the heard part is kept (cut by the connection), and the caller,
who never took the floor, is answered again on the new connection — once — before their next
turn is answered as usual.
"""

from __future__ import annotations

from conformance_support import harness

from vocalis.conversation.heard import word_spans
from vocalis.conversation.items import MessageItem

AGAIN = "As I was saying, parts and labour for two years."
LONG = (
    "Let me read you the full terms of the warranty, which covers parts and labour for two "
    "years from the date of purchase, excluding accidental damage and normal wear."
)


async def test_s20_drop_commits_heard_part_reconnects_and_answers_next_turn() -> None:
    scenario = {
        "server": {"script_scope": "server"},
        "responses": [
            {
                "say": LONG,
                # Still streaming when the socket dies (every new session replays the script).
                "faults": [
                    {"kind": "stall", "seconds": 60, "after_audio_ms": {"item": 0, "ms": 3000}}
                ],
            },
            {"say": AGAIN},
            {"say": "Sure: parts and labour are covered for two full years."},
        ],
    }
    async with harness(scenario) as h:
        h.say("What does the warranty cover?")
        run = await h.response(0, generated=False)
        await h.until(lambda: len(run.playout.pulled) == 1)
        message = run.playout.pulled[0].message
        await h.until(lambda: message.audio_received_ms >= 3000)
        words = list(h.server_item(message.item_id).words)
        await h.play(2.0)
        first_sim = h.sim
        first_sim.abort()  # the connection drops mid-stream, without a close frame

        done = await run.generation.done
        assert done.status == "disconnected"
        # What had arrived still plays out; then the response settles (nothing hangs).
        await h.play_until(lambda: run.settled, limit_s=10)
        item = h.assistant_messages()[0]
        received = message.audio_received_ms
        assert item.id == message.item_id
        assert item.cut_by == "connection" and not item.interrupted
        assert item.played_ms == received
        # Every word whose audio arrived (and played) is kept, at most one word more.
        heard = [w for w in words if (w.start_ms + w.end_ms) / 2 <= received]
        assert len(heard) <= len(word_spans(item.text)) <= len(heard) + 1
        assert LONG.startswith(item.text) and 0 < len(item.text) < len(LONG)

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

        # Unasked, the answer is given again on the new connection (once)...
        again = await h.response(1, generated=False)
        await h.play_until(lambda: again.settled)
        assert again.handle.kind == "reply"
        assert [m.text for m in h.assistant_messages()] == [item.text, AGAIN]
        assert len([e for e in second_sim.client_events if e["type"] == "response.create"]) == 1

        # ...and the caller's next turn gets an answer on the new connection.
        h.say("Can you repeat that?")
        second = await h.response(2, generated=False)
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
            "speaking",  # said again
            "listening",
            "thinking",
            "speaking",
            "listening",
        ]
