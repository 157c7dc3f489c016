"""S6: the item plays to the end; the caller speaks 500 ms later. Nothing is truncated."""

from __future__ import annotations

from conformance_support import harness

from vocalis.runtime.events import Interrupted

TEXT = "Your order has shipped and should arrive on Thursday afternoon."


async def test_s6_fully_played_item_is_never_truncated() -> None:
    scenario = {"responses": [{"say": TEXT}, {"say": "You are welcome."}]}
    async with harness(scenario) as h:
        h.say("Where is my order?")
        run = await h.response(0)
        await h.play_until(lambda: run.settled)
        assert h.session.agent_state == "listening"
        await h.play(0.5)
        h.say("Thanks.")
        second = await h.response(1)
        await h.play_until(lambda: second.settled)

        assert h.events(Interrupted) == []
        assert h.client_events("conversation.item.truncate") == []
        assert h.client_events("conversation.item.delete") == []
        assert h.client_events("response.cancel") == []
        first = h.assistant_messages()[0]
        assert first.text == TEXT and not first.interrupted
        assert first.played_ms == run.playout.pulled[0].message.audio_received_ms
        assert h.session.agent_states == [
            "listening",
            "thinking",
            "speaking",
            "listening",
            "thinking",
            "speaking",
            "listening",
        ]
