"""`AgentTest` end to end on the embedded sim: greetings, typed and spoken turns, barge-in."""

from __future__ import annotations

from vocalis import Agent
from vocalis.testing import AgentTest

GREETING = "Chez Vocalis, good evening!"


async def test_the_greeting_plays_before_the_first_turn() -> None:
    agent = Agent("You answer the phone.", greeting=GREETING)
    # The sim speaks a `say()` (the greeting) verbatim; the scenario scripts the replies.
    scenario = {"responses": [{"say": "For two at eight, noted."}]}
    async with AgentTest(agent, scenario=scenario) as call:
        call.transcript.expect_heard("good evening")
        turn = await call.user_says("A table for two at eight.")
        turn.expect_heard("noted")
        turn.expect_not_heard("good evening")  # a turn only holds its own messages
        call.transcript.expect_history(
            [
                ("assistant", GREETING),
                ("user", "A table for two at eight."),
                ("assistant", "For two at eight, noted."),
            ]
        )


async def test_play_only_moves_time_while_the_agent_speaks() -> None:
    scenario = {"responses": [{"say": "One, two, three, four, five, six, seven, eight."}]}
    async with AgentTest(Agent("Count."), scenario=scenario) as call:
        await call.user_says("Count to eight.", wait="speaking")
        before = call.clock.now()
        await call.play(0.4)
        assert round(call.clock.now() - before, 6) == 0.4
        turn = await call.until_idle()
        [message] = turn.messages
        assert not message.interrupted and message.played_ms and message.played_ms > 400
