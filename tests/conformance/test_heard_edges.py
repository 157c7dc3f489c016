"""The heard contract at the edges (issue #20): tool calls across a dropped connection, caller
audio never rewritten, a message the provider cut short.

Every case checks three things:

* the local history (what the caller heard, in the provider's order);
* the provider side, on every connection the sim saw (`check_provider_side`): each function
  call has exactly one output, after it; no output without its call; the caller's audio turns
  stay audio (never deleted and re-created as text);
* that the caller is answered — exactly once.

The sim plays one script across connections (`script_scope: server`), so what a response says
on the new connection is the next scripted answer, and each fault fires once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from conformance_support import Harness, check_provider_side, harness, server_vad

from vocalis.conversation.heard import word_spans
from vocalis.conversation.items import FunctionCallItem, FunctionCallOutputItem, MessageItem
from vocalis.runtime.agent import Agent
from vocalis.runtime.events import ToolCallStarted
from vocalis.runtime.options import AgentSessionOptions
from vocalis.runtime.response import ResponseRun
from vocalis.runtime.tools import function_tool

QUESTION = "What is the weather in Paris?"
PREAMBLE = "Let me look that up for you."
ANSWER = "It is sunny in Paris right now, twenty two degrees with a light breeze from the west."
AGAIN = "As I was saying, it is sunny and warm in Paris."
OPTIONS = AgentSessionOptions(
    turn_detection=server_vad(), input_transcription_model="gpt-4o-mini-transcribe"
)


def tool_turn(faults: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The caller's question answered by a preamble and a `get_weather` call."""
    return {
        "user_transcript": QUESTION,
        "items": [
            {"say": PREAMBLE},
            {"call": "get_weather", "arguments": {"city": "Paris"}, "call_id": "call_w1"},
        ],
        "faults": faults or [],
    }


class Weather:
    """A `get_weather` tool the test releases: it "runs" for as long as the test wants."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.calls: list[str] = []

        @function_tool
        async def get_weather(city: str) -> str:
            """Current weather for a city."""
            self.calls.append(city)
            await self.release.wait()
            return "sunny, 22 C"

        self.tool = get_weather


async def start(h: Harness, weather: Weather) -> None:
    await h.session.start(Agent("Weather agent.", tools=[weather.tool]))


def kinds(h: Harness) -> list[str]:
    out = []
    for item in h.session.history:
        if isinstance(item, MessageItem):
            out.append(f"{item.role}:{item.text}")
        elif isinstance(item, FunctionCallItem):
            out.append(f"call:{item.call_id}")
        elif isinstance(item, FunctionCallOutputItem):
            out.append(f"output:{item.call_id}")
    return out


def response_creates(h: Harness, connection: int) -> list[dict[str, Any]]:
    sim = h.server.sessions[connection]
    return [e for e in sim.client_events if e["type"] == "response.create"]


async def test_drop_right_after_the_call_arguments_while_the_tool_runs() -> None:
    """The socket dies after `function_call_arguments.done` (before the item and response
    are done) while the tool runs: the call and its output reach the new session, in order,
    and the caller hears the answer once."""
    scenario = {
        "server": {"script_scope": "server"},
        "responses": [
            tool_turn([{"kind": "drop", "after_event": "response.function_call_arguments.done"}]),
            {"say": ANSWER},
        ],
    }
    weather = Weather()
    async with harness(scenario, options=OPTIONS, start=False) as h:
        await start(h, weather)
        h.say(QUESTION)
        first = await h.response(0)
        assert (await first.generation.done).status == "disconnected"
        await h.event(ToolCallStarted)
        await h.until(lambda: len(h.server.sessions) == 2)
        await h.play_until(lambda: first.playout_finished)
        assert not first.settled  # its call waits for the tool
        weather.release.set()  # the tool finishes on the new connection
        await h.until(lambda: first.settled)
        answer = await h.response(1)
        await h.play_until(lambda: answer.settled and first.settled)
        await h.settled()

        assert kinds(h) == [
            f"user:{QUESTION}",
            f"assistant:{PREAMBLE}",
            "call:call_w1",
            "output:call_w1",
            f"assistant:{ANSWER}",
        ]
        assert weather.calls == ["Paris"]
        assert answer.handle.kind == "tool_followup"
        assert len(h.runs) == 2 and len(response_creates(h, 1)) == 1
        check_provider_side(h)
        assert h.session.agent_state == "listening"


@contextlib.asynccontextmanager
async def answer_lost_after_a_tool(
    fault: dict[str, Any],
) -> AsyncIterator[tuple[Harness, ResponseRun, ResponseRun]]:
    """A tool round trip whose follow-up answer dies with the connection at `fault`; yields
    the harness, the lost answer and the answer given again, all played and settled."""
    scenario = {
        "server": {"script_scope": "server"},
        "responses": [tool_turn(), {"say": ANSWER, "faults": [fault]}, {"say": AGAIN}],
    }
    weather = Weather()
    weather.release.set()
    async with harness(scenario, options=OPTIONS, start=False) as h:
        await start(h, weather)
        h.say(QUESTION)
        first = await h.response(0)
        await h.play_until(lambda: first.settled)
        lost = await h.response(1)
        assert (await lost.generation.done).status == "disconnected"
        await h.play_until(lambda: lost.settled)
        again = await h.response(2)
        await h.play_until(lambda: again.settled)
        await h.settled()
        yield h, lost, again


async def test_drop_during_the_answer_after_a_tool_round_trip() -> None:
    """The follow-up answer is cut by a drop after 800 ms: the heard part is kept (cut by the
    connection, not interrupted by the caller) and the answer is completed, once, on the new
    connection."""
    drop = {"kind": "drop", "after_audio_ms": {"item": 0, "ms": 800}}
    async with answer_lost_after_a_tool(drop) as (h, cut, _again):
        partial = h.assistant_messages()[1]
        assert partial.id == cut.playout.pulled[0].message.item_id
        assert partial.played_ms == 800
        assert partial.cut_by == "connection" and not partial.interrupted
        assert 0 < len(partial.text) < len(ANSWER) and ANSWER.startswith(partial.text)
        assert kinds(h) == [
            f"user:{QUESTION}",
            f"assistant:{PREAMBLE}",
            "call:call_w1",
            "output:call_w1",
            f"assistant:{partial.text}",
            f"assistant:{AGAIN}",
        ]
        assert len(h.runs) == 3 and len(response_creates(h, 1)) == 1
        # The new connection holds the partial answer as heard, before the rest.
        texts = [i.text for i in h.server.sessions[1].conversation.items if i.role == "assistant"]
        assert texts[-2:] == [partial.text, AGAIN]
        check_provider_side(h)


async def test_drop_before_any_audio_of_the_answer() -> None:
    """The follow-up answer is created, announces its item, and the socket dies before any
    audio: nothing of it is kept, and the caller is answered once on the new connection."""
    drop = {"kind": "drop", "after_event": "response.content_part.added"}
    async with answer_lost_after_a_tool(drop) as (h, lost, _again):
        assert kinds(h) == [
            f"user:{QUESTION}",
            f"assistant:{PREAMBLE}",
            "call:call_w1",
            "output:call_w1",
            f"assistant:{AGAIN}",
        ]
        assert h.recorder.played_ms(lost.playout.pulled[0].message.item_id) == 0
        assert len(h.runs) == 3 and len(response_creates(h, 1)) == 1
        check_provider_side(h)


async def test_caller_speaking_while_a_slow_tool_runs() -> None:
    """The tool's output is sent while the caller is still talking, so the provider commits
    the caller's turn after it. The local history follows that order, and no sync ever turns
    the caller's audio into text."""
    scenario = {
        "responses": [
            tool_turn(),
            {"user_transcript": "And tomorrow?", "say": "Tomorrow looks sunny as well."},
        ]
    }
    weather = Weather()
    async with harness(scenario, options=OPTIONS, start=False) as h:
        await start(h, weather)
        h.say(QUESTION)
        first = await h.response(0)
        await h.play_until(lambda: first.playout_finished)
        h.start_talking("And tomorrow?")
        await h.until(lambda: h.session.user_state == "speaking")
        weather.release.set()
        await h.until(
            lambda: any(
                e["item"]["type"] == "function_call_output"
                for e in h.client_events("conversation.item.create")
            )
        )
        h.silence()
        second = await h.response(1)
        await h.play_until(lambda: second.settled and first.settled)
        await h.settled()

        assert kinds(h) == [
            f"user:{QUESTION}",
            f"assistant:{PREAMBLE}",
            "call:call_w1",
            "output:call_w1",
            "user:And tomorrow?",
            "assistant:Tomorrow looks sunny as well.",
        ]
        # Same order on the provider: nothing to move, so nothing deleted or re-created.
        assert [i.id for i in h.sim.conversation.items] == [i.id for i in h.session.history]
        assert not h.client_events("conversation.item.delete")
        assert second.handle.kind == "server" and len(h.runs) == 2
        check_provider_side(h)


CUT_MS = 4000


async def test_incomplete_response_with_look_ahead_transcript() -> None:
    """The provider ends the response `incomplete` 4 s into its audio, its transcript 600 ms
    ahead: the caller heard all the audio there is, so the history keeps every heard word (not
    marked interrupted: the provider cut it), and the provider item is truncated there so it
    drops the words nobody heard."""
    text = (
        "Your appointment is confirmed for Tuesday at three thirty with doctor Martin in room "
        "twelve on the second floor."
    )
    scenario = {
        "server": {"transcript_lookahead_ms": 600},
        "responses": [
            {
                "say": text,
                "faults": [{"kind": "incomplete", "after_audio_ms": {"item": 0, "ms": CUT_MS}}],
            },
            {"say": "You are welcome."},
        ],
    }
    async with harness(scenario) as h:
        h.say("Is my appointment confirmed?")
        run = await h.response(0)
        done = await run.generation.done
        assert done.status == "incomplete"
        message = run.playout.pulled[0].message
        sent_words = list(h.server_item(message.item_id).words)
        assert sent_words[-1].start_ms > CUT_MS  # the transcript ran ahead of the audio
        await h.play_until(lambda: run.settled)
        await h.settled()

        (item,) = h.assistant_messages()
        assert item.played_ms == CUT_MS
        assert not item.interrupted and item.cut_by == "provider"
        heard = [w for w in sent_words if (w.start_ms + w.end_ms) / 2 <= CUT_MS]
        kept = len(word_spans(item.text))
        assert len(heard) <= kept <= len(heard) + 1
        assert text.startswith(item.text)
        # Provider side: truncated at the audio it holds, so the look-ahead words are gone.
        (truncate,) = h.client_events("conversation.item.truncate")
        assert truncate["audio_end_ms"] == CUT_MS
        server_text = h.server_item(message.item_id).text or ""
        assert len(word_spans(server_text)) <= kept
        # The caller's next turn is answered as usual; nothing was re-requested.
        assert not h.client_events("response.create")
        h.say("Thank you.")
        second = await h.response(1)
        await h.play_until(lambda: second.settled)
        assert h.assistant_messages()[-1].text == "You are welcome."
        check_provider_side(h)
