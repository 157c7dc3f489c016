"""Gemini barge-in scenarios: the local history is the heard history, and after the heard
checkpoint the serving Gemini session holds exactly that too (re-seed strategy)."""

from __future__ import annotations

import pytest

from vocalis.conversation.heard import heard_prefix
from vocalis.runtime.events import Interrupted

from .gemini_harness import gemini_harness

ANSWER = (
    "The weather in Paris is sunny and warm today, with a light breeze from the west "
    "in the afternoon and clear skies tonight."
)
SCENARIO = {
    "server": {"script_scope": "server"},
    "responses": [
        {"user_transcript": "What is the weather in Paris?", "say": ANSWER},
        {"user_transcript": "Stop.", "say": "Sure, go ahead."},
    ],
}


@pytest.mark.parametrize(
    ("pace", "heard_s"),
    [(0.0, 0.0), (0.0, 1.5), (0.0, 5.0), (1.0, 1.5)],
    ids=["fast-early", "fast-mid", "fast-late", "realtime-mid"],
)
async def test_barge_in_keeps_the_heard_part_on_both_sides(pace: float, heard_s: float) -> None:
    async with gemini_harness(SCENARIO, pace=pace) as h:
        h.say("What is the weather in Paris?")
        run = await h.response(0, generated=False)
        await h.until(lambda: len(run.playout.pulled) == 1)
        message = run.playout.pulled[0].message
        if heard_s:
            await h.play_until(lambda: h.segment_started(message.item_id))
            await h.until(lambda: message.audio_received_ms >= heard_s * 1000 + 300)
            await h.play(heard_s)
        played_before = h.recorder.played_ms(message.item_id)
        h.start_talking("Stop.")
        await h.event(Interrupted)
        await h.until(lambda: run.settled)
        await h.until(lambda: h.provider.reseeds == 1)
        h.silence(900)
        # The barge-in is answered by the re-seeded session.
        await h.until(lambda: h.service_texts()[-1:] == [("model", "Sure, go ahead.")])

        local = {m.id: m for m in h.assistant_messages()}
        heard = local.get(message.item_id)
        if heard_s == 0.0:
            # At most the first frame left the sink before the interruption: no word heard.
            assert heard is None or (heard.text == "" and (heard.played_ms or 0) <= 20)
            expected = []
        else:
            assert heard is not None and heard.interrupted
            assert heard.played_ms is not None and abs(heard.played_ms - played_before) <= 20
            # A word prefix of what was generated, within one word of the estimate from the
            # audio played (at real-time generation the transcript was still growing).
            generated = message.text_received.strip()
            estimate = heard_prefix(generated, heard.played_ms, message.audio_received_ms)
            assert ANSWER.startswith(generated) and generated.startswith(heard.text)
            assert abs(len(heard.text.split()) - len(estimate.split())) <= 1
            expected = [("model", heard.text)] if heard.text else []
        # What the service holds after the checkpoint: the heard history, then the new turn.
        assert h.service_texts() == [
            ("user", "What is the weather in Paris?"),
            *expected,
            ("user", "Stop."),
            ("model", "Sure, go ahead."),
        ]
        # The old session still holds what it sent (the problem the re-seed solves).
        old = h.sims.connections[0].session.history.turns[1]
        assert old.interrupted and len(old.text) > len(heard.text if heard else "")
