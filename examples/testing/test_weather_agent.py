"""Testing an agent offline with `vocalis.testing`: each test is a real call in virtual time.

Run with `uv run pytest examples/testing -q` (a few tenths of a second per test: the
sim-server generates at full speed and the caller's playback clock is advanced by the test).
Explained step by step in docs/testing-with-sim-server.md.
"""

from __future__ import annotations

from pathlib import Path

from assistant_with_tools import agent  # the agent under test (examples/ is on pythonpath)

from vocalis.audio.espeak import synthesize
from vocalis.audio.wav import write_wav
from vocalis.testing import AgentTest, StartCall

# What the simulated model answers, one entry per response (a tool follow-up is a response
# too); `user_transcript` is what it "heard". The full schema is in docs/sim-server.md.
WEATHER = {
    "responses": [
        {
            "user_transcript": "What's the weather in London?",
            "items": [
                {"say": "One moment, I'll look that up."},
                {"call": "get_weather", "arguments": {"city": "London"}},
            ],
        },
        # The follow-up after the tool output; {result[...]} reads the output as JSON.
        {"say": "It is {result[sky]} in London, {result[temperature_c]} degrees."},
    ]
}

LONG_ANSWER = {
    "responses": [
        {
            "say": "Tomorrow starts with light rain in the morning, then the clouds break up "
            "around noon and the afternoon stays dry and mild with a gentle southern breeze.",
        },
        {"user_transcript": "Thanks, that's all.", "say": "You're welcome, goodbye!"},
    ]
}

UNKNOWN_CITY = {
    "responses": [
        {"items": [{"call": "get_weather", "arguments": {"city": "Atlantis"}}]},
        {"say": "Sorry, I have no weather for Atlantis."},
    ]
}


async def test_weather_question_uses_the_tool(agent_test: StartCall) -> None:
    call = await agent_test(agent, scenario=WEATHER)
    turn = await call.user_says("What's the weather in London?")
    turn.expect_tool_call("get_weather", city="London")
    turn.expect_said("16 degrees")


async def test_barge_in_keeps_only_what_was_heard() -> None:
    async with AgentTest(agent, scenario=LONG_ANSWER) as call:
        await call.user_says("Will it rain tomorrow?", wait="speaking")
        await call.play(1.5)  # the caller hears 1.5 s of the long answer...
        turn = await call.user_speaks("Thanks, that's all.")  # ...and talks over it
        cut = turn.expect_interrupted(at_ms=1500)
        # The history holds the words the caller heard, not the whole generated answer...
        assert cut.heard and cut.heard != cut.said
        turn.expect_not_heard("southern breeze")
        # ...and the model's own copy was truncated at the same point.
        [remote] = [i for i in call.sim.conversation.items if i.id == cut.item_id]
        assert remote.truncated_at_ms == int(cut.played_ms or 0)
        turn.expect_said("goodbye")


async def test_a_failing_tool_gives_the_model_an_error(agent_test: StartCall) -> None:
    call = await agent_test(agent, scenario=UNKNOWN_CITY)
    turn = await call.user_says("And in Atlantis?")
    failed = turn.expect_tool_call("get_weather", city="Atlantis")
    assert failed.is_error and failed.result == {"error": "no weather data for Atlantis"}
    call.transcript.expect_history(
        [("user", "And in Atlantis?"), ("assistant", "Sorry, I have no weather for Atlantis.")]
    )


async def test_a_recorded_question(agent_test: StartCall, tmp_path: Path) -> None:
    wav = tmp_path / "caller.wav"  # any recording works: 16-bit or float, any rate
    write_wav(wav, synthesize("What's the weather in London?", sample_rate=16000).to_frame())
    call = await agent_test(agent, scenario=WEATHER)
    turn = await call.user_speaks(wav)
    turn.expect_tool_call("get_weather", city="London")
    turn.expect_heard("light rain in London")
