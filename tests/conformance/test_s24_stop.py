"""S24: a real interruption ("stop", ~300 ms) at 2.0 s of playback."""

from __future__ import annotations

from conformance_support import harness, speech

from vocalis.conversation.heard import word_spans
from vocalis.runtime.events import Interrupted

RECIPE = (
    "First preheat the oven to two hundred degrees, then mix the flour with the butter and "
    "the sugar, add two eggs one at a time, and bake for twenty five minutes."
)


async def test_s24_stop_truncates_at_two_seconds_and_context_holds_only_the_heard_part() -> None:
    scenario = {"responses": [{"say": RECIPE}, {"say": "Okay, I stopped."}]}
    assert len(speech("Stop.")) / 24000 < 0.6
    async with harness(scenario) as h:
        h.say("How do I bake the cake?")
        run = await h.response(0)
        message = run.playout.pulled[0].message
        await h.play_until(lambda: h.segment_started(message.item_id))
        await h.play(2.0)
        before = len(h.recorder.pieces_of(message.item_id))
        h.start_talking("Stop.")
        interrupted = await h.event(Interrupted)
        await h.play(0.3)
        # Playback stopped at the speech onset: no frame of the answer after it.
        assert len(h.recorder.pieces_of(message.item_id)) == before
        assert abs(interrupted.at - h.recorder.pieces_of(message.item_id)[-1].at) < 1e-6
        await h.until(lambda: run.settled)
        h.silence()
        second = await h.response(1)
        await h.play_until(lambda: second.settled)

        (truncate,) = h.client_events("conversation.item.truncate")
        assert abs(truncate["audio_end_ms"] - 2000) <= 20
        first, answer = h.assistant_messages()
        assert first.interrupted and first.played_ms == truncate["audio_end_ms"]
        assert answer.text == "Okay, I stopped."
        # The context of the reply held only the heard part of the recipe.
        server_text = h.server_item(message.item_id).content[0]["transcript"]
        assert RECIPE.startswith(server_text) and len(server_text) < len(RECIPE) / 2
        assert abs(len(word_spans(server_text)) - len(word_spans(first.text))) <= 1
        assert "twenty five minutes" not in server_text
        assert h.session.agent_states == [
            "listening",
            "thinking",
            "speaking",
            "listening",
            "thinking",
            "speaking",
            "listening",
        ]
