"""S10: the assistant counts; the caller says "okay" at 2.6 s. Stored text = what was heard."""

from __future__ import annotations

from conformance_support import harness

from vocalis.conversation.heard import word_spans
from vocalis.runtime.events import Interrupted

COUNT = ", ".join(
    [
        "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
        "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
        "eighteen", "nineteen", "twenty",
    ]
)  # fmt: skip


async def test_s10_interrupted_count_is_stored_as_the_heard_prefix() -> None:
    scenario = {"responses": [{"say": COUNT}, {"say": "Okay, stopping here."}]}
    async with harness(scenario) as h:
        h.say("Count to twenty please.")
        run = await h.response(0)
        message = run.playout.pulled[0].message
        words_before = list(h.server_item(message.item_id).words)
        await h.play_until(lambda: h.segment_started(message.item_id))
        await h.play(2.6)
        h.start_talking("Okay.")
        await h.event(Interrupted)
        await h.until(lambda: run.settled)
        h.silence()

        item = h.assistant_messages()[0]
        (truncate,) = h.client_events("conversation.item.truncate")
        cut = truncate["audio_end_ms"]
        assert item.interrupted and item.played_ms == cut
        assert COUNT.startswith(item.text)
        # Truth from espeak's own word timings (the server's item): words that ended by the cut.
        truth = [w for w in words_before if w.end_ms <= cut]
        assert abs(len(word_spans(item.text)) - len(truth)) <= 1
        assert 3 <= len(word_spans(item.text)) <= 8
        # The provider's memory (the context of the next request) holds the same prefix only.
        server_text = h.server_item(message.item_id).content[0]["transcript"]
        assert abs(len(word_spans(server_text)) - len(word_spans(item.text))) <= 1
        assert "twenty" not in server_text and "twenty" not in item.text
        assert h.session.agent_states[:4] == ["listening", "thinking", "speaking", "listening"]
