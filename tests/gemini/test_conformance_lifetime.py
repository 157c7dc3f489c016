"""Gemini connection lifetime: drop and resumption, goAway, and the other heard strategies."""

from __future__ import annotations

from typing import Any

from vocalis.providers.gemini import HeardStrategy
from vocalis.runtime.events import Interrupted

from .gemini_harness import GeminiHarness, gemini_harness

ANSWER = (
    "The weather in Paris is sunny and warm today, with a light breeze from the west "
    "in the afternoon and clear skies tonight."
)
SCENARIO: dict[str, Any] = {
    "server": {"script_scope": "server"},
    "responses": [
        {"user_transcript": "What is the weather in Paris?", "say": ANSWER},
        {"user_transcript": "And tomorrow?", "say": "Tomorrow will be cloudy."},
    ],
}


async def _first_turn(h: GeminiHarness, *, play_all: bool = True) -> Any:
    h.say("What is the weather in Paris?")
    run = await h.response(0)
    if play_all:
        await h.play_until(lambda: run.settled)
        await h.settled()  # and the heard checkpoint that follows it ran: between turns
    return run


async def _second_turn(h: GeminiHarness) -> None:
    h.say("And tomorrow?")
    run = await h.response(1)
    await h.play_until(lambda: run.settled)
    await h.settled()


async def test_drop_between_turns_resumes_the_same_conversation() -> None:
    async with gemini_harness(SCENARIO) as h:
        await _first_turn(h)
        first = h.sims.connections[0]
        await first.wait_for(lambda s: not s.generating)  # its handle covers the whole turn
        first.drop()
        await h.until(lambda: h.provider.reconnects == 1)
        second = await h.sims.wait_for_connection(2)
        await second.wait_for(lambda s: s.setup is not None)
        assert second.session.resumed_from is not None
        await _second_turn(h)
        assert h.provider.reseeds == 0  # resumed history = heard history: nothing to fix
        assert (
            h.service_texts()
            == h.local_texts()
            == [
                ("user", "What is the weather in Paris?"),
                ("model", ANSWER),
                ("user", "And tomorrow?"),
                ("model", "Tomorrow will be cloudy."),
            ]
        )


async def test_drop_mid_answer_resumes_then_reseeds_the_heard_part() -> None:
    async with gemini_harness(SCENARIO) as h:
        run = await _first_turn(h, play_all=False)
        message = run.playout.pulled[0].message if run.playout.pulled else None
        await h.play(1.5)
        h.sims.connections[0].drop()  # the service had not completed the turn: no handle for it
        await h.until(lambda: h.provider.reconnects == 1)
        await h.play_until(lambda: run.settled)
        await h.until(lambda: h.provider.reseeds == 1)
        assert message is not None
        heard = next(m for m in h.assistant_messages() if m.id == message.item_id)
        assert h.service_texts() == [
            ("user", "What is the weather in Paris?"),
            ("model", heard.text),
        ]
        await _second_turn(h)
        assert h.service_texts() == h.local_texts()


async def test_go_away_moves_to_a_resumed_connection_between_turns() -> None:
    async with gemini_harness(SCENARIO) as h:
        await _first_turn(h)
        first = h.sims.connections[0]
        first.go_away(3.0)
        second = await h.sims.wait_for_connection(2)
        await second.wait_for(lambda s: s.setup is not None)
        assert second.session.resumed_from is not None
        await first.wait_for(lambda s: s.closed is not None)
        await _second_turn(h)
        assert h.service_texts() == h.local_texts()
        assert len(h.local_texts()) == 4


async def _barge_in(h: GeminiHarness) -> tuple[str, str]:
    run = await _first_turn(h, play_all=False)
    message = run.playout.pulled[0].message
    await h.play_until(lambda: h.segment_started(message.item_id))
    await h.play(1.5)
    h.start_talking("And tomorrow?")
    await h.event(Interrupted)
    await h.until(lambda: run.settled)
    # The heard checkpoint (note or re-seed) reaches the service before the caller's turn ends
    # (caller audio goes out inside the push; the checkpoint runs on its own task).
    await h.settled()
    h.silence(900)
    await h.until(lambda: h.service_texts()[-1:] == [("model", "Tomorrow will be cloudy.")])
    heard = next(m for m in h.assistant_messages() if m.id == message.item_id)
    return message.text_received.strip(), heard.text


async def test_correction_strategy_tells_the_model_in_the_same_session() -> None:
    async with gemini_harness(SCENARIO, strategy=HeardStrategy.CORRECTION) as h:
        sent, heard = await _barge_in(h)
        assert len(h.sims.connections) == 1 and h.provider.corrections == 1
        texts = h.service_texts()
        assert texts[1] == ("model", sent)  # the unheard words stay in the service's history
        (note,) = [t for r, t in texts if r == "user" and t.startswith("[Context note")]
        assert f'heard only: "{heard}"' in note


async def test_no_strategy_leaves_the_unheard_words_in_the_model_memory() -> None:
    """The baseline other frameworks ship: the service remembers what the caller never heard."""
    async with gemini_harness(SCENARIO, strategy=HeardStrategy.NONE) as h:
        sent, heard = await _barge_in(h)
        assert len(h.sims.connections) == 1
        assert h.service_texts()[1] == ("model", sent) and len(sent) > len(heard)
        assert ("model", heard) in h.local_texts()


async def test_correct_then_reseed_tells_at_once_and_fixes_memory_once_settled() -> None:
    """The note while the caller talks (no setup on the path of the answer), then a re-seed
    when the answer to the barge-in has settled: the memory ends up exact."""
    async with gemini_harness(SCENARIO, strategy=HeardStrategy.CORRECT_THEN_RESEED) as h:
        _, heard = await _barge_in(h)
        assert h.provider.corrections == 1 and h.provider.reseeds == 0
        assert any(t.startswith("[Context note") for _, t in h.service_texts())
        answer = await h.response(1)
        await h.play_until(lambda: answer.settled)
        await h.until(lambda: h.provider.reseeds == 1)
        assert h.service_texts() == h.local_texts()
        assert ("model", heard) in h.service_texts()
        assert not any(t.startswith("[Context note") for _, t in h.service_texts())
