"""S2: two-message response, barge-in 200 ms into the preamble (item 1)."""

from __future__ import annotations

from conformance_support import harness

from vocalis.runtime.events import Interrupted

PREAMBLE = "Let me check that for you right now."
ANSWER = "The museum opens at nine in the morning and closes at six in the evening."


async def test_s2_barge_in_200ms_into_preamble() -> None:
    scenario = {
        "responses": [
            {"items": [{"say": PREAMBLE}, {"say": ANSWER}]},
            {"say": "Okay."},
        ]
    }
    async with harness(scenario) as h:
        h.say("When does the museum open?")
        run = await h.response(0)
        first, second = (p.message for p in run.playout.pulled)
        await h.play_until(lambda: h.segment_started(first.item_id))
        await h.play(0.20)
        h.say("Wait.")
        await h.event(Interrupted)
        await h.until(lambda: run.settled)
        # Nothing of item 2 ever reached the caller, before or after the clear.
        await h.play(0.5)

        messages = {m.id: m for m in h.assistant_messages()}
        assert first.item_id in messages and second.item_id not in messages
        cut = messages[first.item_id]
        assert cut.interrupted and cut.played_ms is not None and 200 <= cut.played_ms <= 220
        assert h.recorder.pieces_of(second.item_id) == []
        assert h.recorder.played_ms(first.item_id) == cut.played_ms

        truncates = h.client_events("conversation.item.truncate")
        assert [(t["item_id"], t["audio_end_ms"]) for t in truncates] == [
            (first.item_id, int(cut.played_ms))
        ]
        assert [d["item_id"] for d in h.client_events("conversation.item.delete")] == [
            second.item_id
        ]
        await h.until(lambda: not h.server_has(second.item_id))
        assert h.server_item(first.item_id).truncated_at_ms == int(cut.played_ms)
        # One message generation per item; the runtime never dropped item 2 as "unexpected".
        assert [v.segment_id for v in h.transport.text.verdicts][:2] == [
            first.item_id,
            second.item_id,
        ]
        assert h.session.agent_states[:4] == ["listening", "thinking", "speaking", "listening"]
