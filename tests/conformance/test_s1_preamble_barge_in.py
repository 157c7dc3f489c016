"""S1: two-message response (preamble + answer, plus a third), barge-in 300 ms into item 2."""

from __future__ import annotations

from conformance_support import harness

from vocalis.conversation.heard import heard_prefix
from vocalis.conversation.items import MessageItem
from vocalis.runtime.events import Interrupted

PREAMBLE = "Let me check that for you."
ANSWER = (
    "The weather in Paris is sunny and warm today, with a light breeze from the west "
    "in the afternoon and clear skies tonight."
)
THIRD = "Is there anything else I can help with?"


async def test_s1_barge_in_300ms_into_second_message() -> None:
    scenario = {
        "responses": [
            {"items": [{"say": PREAMBLE}, {"say": ANSWER}, {"say": THIRD}]},
            {"say": "Sure, go ahead."},
        ]
    }
    async with harness(scenario) as h:
        h.say("What is the weather in Paris?")
        await h.until(lambda: len(h.session.responses) == 1)
        (run,) = h.session.responses
        await h.until(lambda: run.generation.done.done() and len(run.playout.pulled) == 3)
        first, second, third = (p.message for p in run.playout.pulled)

        await h.play_until(lambda: h.segment_started(second.item_id))
        await h.play(0.30)
        h.say("Stop.")
        interrupted = await h.event(Interrupted)
        assert interrupted.source == "server_vad"
        await h.until(lambda: run.settled)

        # Local history: item 1 in full, item 2 cut near 300 ms, item 3 absent.
        messages = {m.id: m for m in h.assistant_messages()}
        assert messages[first.item_id].text == PREAMBLE
        assert not messages[first.item_id].interrupted
        cut = messages[second.item_id]
        assert cut.interrupted
        assert cut.played_ms is not None and 300 <= cut.played_ms <= 320
        assert cut.text == heard_prefix(ANSWER, cut.played_ms, second.audio_received_ms)
        assert third.item_id not in messages

        # Provider: exactly one truncate (item 2 at the played ms), item 3 deleted, no cancel.
        truncates = h.client_events("conversation.item.truncate")
        assert [(t["item_id"], t["audio_end_ms"]) for t in truncates] == [
            (second.item_id, int(cut.played_ms))
        ]
        deletes = h.client_events("conversation.item.delete")
        assert [d["item_id"] for d in deletes] == [third.item_id]
        assert h.client_events("response.cancel") == []
        await h.until(lambda: not h.server_has(third.item_id))
        server_second = h.server_item(second.item_id)
        assert server_second.truncated_at_ms == int(cut.played_ms)
        assert h.server_item(first.item_id).truncated_at_ms is None

        # Conversation order: caller, preamble, cut answer, then the caller's barge-in turn
        # (committed before the ledger settled, yet placed after the answer it cut).
        def message_roles() -> list[tuple[str, str]]:
            return [(i.role, i.id) for i in h.session.history if isinstance(i, MessageItem)]

        await h.until(lambda: [r for r, _ in message_roles()].count("user") == 2)
        roles = message_roles()
        assert [r for r, _ in roles[:4]] == ["user", "assistant", "assistant", "user"]
        assert [i for _, i in roles[1:3]] == [first.item_id, second.item_id]
        server_order = [i.id for i in h.server_items()]
        assert server_order.index(second.item_id) < server_order.index(roles[3][1])

        # States: listening -> thinking -> speaking -> listening (on the barge-in).
        assert h.session.agent_states[:4] == ["listening", "thinking", "speaking", "listening"]
