"""The agent state across a tool round trip: it changes once per response (heard contract 6).

Between a tool call and the follow-up reply the runtime owes the caller an answer — the
caller is not expected to speak there — so the agent stays `thinking` from the end of the
calling response until the follow-up plays; a `listening` in between is a flicker (a UI
would show the mic as open, a telephony bridge would re-arm its own VAD).
"""

from __future__ import annotations

from conformance_support import FAKE_KEY, harness, weather_agent

from session_harness_support import TOOL_ROUND_STATES
from vocalis.conversation.items import MessageItem
from vocalis.providers.openai.realtime import OpenAIRealtimeModel
from vocalis.runtime.context import answered, wait_until
from vocalis.runtime.events import AgentStateChanged
from vocalis.runtime.session import AgentSession
from vocalis.sim.server import SimServer
from vocalis.transports.text import TextTransport
from vocalis.utils.clock import ManualClock

ANSWER = "It is eighteen degrees and sunny in Paris."


async def _states_of_a_tool_round(
    first: dict[str, object], tool_s: float, *, heard_first: bool = False
) -> list[str]:
    scenario = {"responses": [first, {"say": ANSWER}]}
    async with harness(scenario, start=False) as h:
        changes: list[AgentStateChanged] = []
        h.session.on(AgentStateChanged, changes.append)
        await h.session.start(weather_agent(h.clock, tool_s=tool_s))
        h.say("What's the weather in Paris?")
        if heard_first:
            # The preamble plays to its end while the provider still generates the response.
            run = await h.response(0, generated=False)
            await h.until(lambda: bool(run.playout.pulled))
            segment = run.playout.pulled[0].segment
            assert segment is not None
            await h.play_until(lambda: segment.done)
            # The case under test: heard in full, and the response has not ended yet.
            assert not run.generation.done.done()
        await h.play_until(lambda: len(h.runs) > 1 and h.runs[1].settled)
        await h.settled()
        assert [m.text for m in h.assistant_messages()][-1] == ANSWER
        # Each change is a real change, and the events tell the same story as the state list.
        assert all(c.old != c.new for c in changes)
        assert [c.new for c in changes] == h.session.agent_states
        return [changes[0].old, *(c.new for c in changes)]


CALL = {"call": "get_weather", "arguments": {"city": "Paris"}, "call_id": "call_w"}


async def test_a_tool_only_response_stays_thinking_until_the_follow_up_speaks() -> None:
    states = await _states_of_a_tool_round({"items": [CALL]}, tool_s=0.4)
    assert states == ["initializing", "listening", "thinking", "speaking", "listening"]


async def test_a_slow_tool_after_a_preamble_stays_thinking_until_the_follow_up() -> None:
    states = await _states_of_a_tool_round({"items": [{"say": "Let me check."}, CALL]}, tool_s=2.0)
    assert states == ["initializing", *TOOL_ROUND_STATES]


async def test_a_response_that_ends_after_its_preamble_played_stays_thinking() -> None:
    """The provider's end of the response comes after the preamble was heard in full (it took
    a while to finish the call): playout is over before the run learns of the end, and the
    follow-up is owed from the call on — no `listening` at the end of the preamble."""
    first = {
        "items": [{"say": "Let me check."}, CALL],
        "faults": [
            {
                "kind": "stall",
                "seconds": 1.5,
                "after_event": "response.output_item.done",
                "occurrence": 2,
            }
        ],
    }
    states = await _states_of_a_tool_round(first, tool_s=0.0, heard_first=True)
    assert states == ["initializing", *TOOL_ROUND_STATES]


async def test_a_typed_question_with_a_tool_round_thinks_until_the_answer() -> None:
    """`vocalis chat`'s path: text only, the sim streaming at real pace, so the preamble's text
    has ended long before the response does. The agent thinks from the question to the
    answer — before the fix it went `thinking, listening, thinking` around the call."""
    scenario = {"responses": [{"items": [{"say": "Let me check."}, CALL]}, {"say": ANSWER}]}
    async with SimServer(scenario=scenario, pace=1.0) as server:
        model = OpenAIRealtimeModel(api_key=FAKE_KEY, base_url=server.url.removesuffix("/realtime"))
        transport = TextTransport()
        clock = ManualClock()
        async with AgentSession(model, transport, clock=clock) as session:
            await session.start(weather_agent(clock))
            known = {item.id for item in session.history}
            transport.send("What's the weather in Paris?")
            await wait_until(session, lambda: answered(session, known), 30)
            last = session.history[-1]
            assert isinstance(last, MessageItem) and last.text == ANSWER
            assert session.agent_states == ["listening", "thinking", "listening"]
