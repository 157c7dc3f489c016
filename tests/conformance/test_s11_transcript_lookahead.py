"""S11: transcript deltas run 1.5 s ahead of the audio; barge-in at 1.0 s of playback."""

from __future__ import annotations

from conformance_support import harness

from vocalis.conversation.heard import word_spans
from vocalis.conversation.items import MessageItem
from vocalis.runtime.events import ConversationItemAdded, Interrupted

TEXT = (
    "Your appointment is confirmed for Tuesday at three thirty with doctor Martin in room "
    "twelve on the second floor."
)


async def test_s11_ui_and_history_show_only_words_whose_audio_played() -> None:
    scenario = {
        "server": {"transcript_lookahead_ms": 1500},
        "responses": [{"say": TEXT}, {"say": "Sure."}],
    }
    async with harness(scenario) as h:
        h.say("Is my appointment confirmed?")
        run = await h.response(0)
        message = run.playout.pulled[0].message
        assert message.text_received == TEXT  # the whole transcript arrived before playback
        words = list(h.server_item(message.item_id).words)
        await h.play_until(lambda: h.segment_started(message.item_id))
        await h.play(1.0)
        shown_at_barge_in = h.transport.text.agent_texts.get(message.item_id, "")
        h.start_talking("Wait.")
        await h.event(Interrupted)
        await h.until(lambda: run.settled)
        h.silence()

        (truncate,) = h.client_events("conversation.item.truncate")
        cut = truncate["audio_end_ms"]
        truth = len([w for w in words if w.end_ms <= cut])
        added = [e.item for e in h.events(ConversationItemAdded) if e.item.id == message.item_id]
        assert len(added) == 1 and isinstance(added[0], MessageItem)
        heard = added[0].text
        assert abs(len(word_spans(heard)) - truth) <= 1
        assert abs(len(word_spans(shown_at_barge_in)) - truth) <= 1
        assert len(heard) < len(TEXT) / 2
        verdict = h.transport.text.verdict(message.item_id)
        assert verdict.heard_text == heard
        assert h.session.agent_states[:4] == ["listening", "thinking", "speaking", "listening"]
