"""Fault matrix, tools: raising, hanging, returning junk, unknown names, bad arguments.

Whatever a tool does, the call gets exactly one output (an error output the model can read,
without a traceback), the follow-up reply still plays, and the session carries on. The harness
checks on exit: no leaks, heard contract, tools exactly once, no history item lost.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from reliability_support import Harness, harness, server_vad

from vocalis.conversation.items import FunctionCallOutputItem
from vocalis.runtime.agent import Agent
from vocalis.runtime.events import ToolCallFinished
from vocalis.runtime.options import AgentSessionOptions
from vocalis.runtime.tools import FunctionTool, ToolError, function_tool

OPTIONS = AgentSessionOptions(
    turn_detection=server_vad(), input_transcription_model="gpt-4o-mini-transcribe"
)
PREAMBLE = "One moment, let me check."


def scenario(arguments: Any = None, name: str = "lookup") -> dict[str, Any]:
    return {
        "responses": [
            {
                "items": [
                    {"say": PREAMBLE},
                    {
                        "call": name,
                        "arguments": arguments if arguments is not None else {"q": "hours"},
                        "call_id": "call_fault",
                    },
                ]
            },
            {"say": "Sorry, that did not work."},
            {"say": "Anything else?"},
        ]
    }


def sent_outputs(h: Harness) -> list[dict[str, Any]]:
    return [
        e["item"]
        for e in h.sim.client_events
        if e["type"] == "conversation.item.create" and e["item"]["type"] == "function_call_output"
    ]


async def run_tool_turn(h: Harness) -> FunctionCallOutputItem:
    """The caller asks; the preamble plays; the call is answered; the follow-up plays."""
    first = await h.turn("What are the opening hours?", 0)
    assert first.calls and first.calls[0].call_id == "call_fault"
    follow = await h.response(1, generated=False)
    assert follow.handle.kind == "tool_followup"
    await h.finish(follow)
    assert h.assistant_messages()[-1].text == "Sorry, that did not work."
    (output,) = [i for i in h.session.history if isinstance(i, FunctionCallOutputItem)]
    assert [o["call_id"] for o in sent_outputs(h)] == ["call_fault"]
    assert sent_outputs(h)[0]["output"] == output.output
    return output


def error_text(output: FunctionCallOutputItem) -> str:
    assert output.is_error
    payload = json.loads(output.output)
    assert set(payload) == {"error"}
    text = str(payload["error"])
    assert "Traceback" not in text and 'File "' not in text
    return text


class Unserializable:
    def __repr__(self) -> str:
        return "<Unserializable>"


def _raising() -> FunctionTool:
    @function_tool
    async def lookup(q: str) -> str:
        """Look something up."""
        raise KeyError("no such place")

    return lookup


def _tool_error() -> FunctionTool:
    @function_tool
    async def lookup(q: str) -> str:
        """Look something up."""
        raise ToolError("The opening hours service is down.")

    return lookup


def _sync_raising() -> FunctionTool:
    @function_tool
    def lookup(q: str) -> str:
        """Look something up (sync, in a worker thread)."""
        raise ZeroDivisionError("division by zero")

    return lookup


def _timeout() -> FunctionTool:
    @function_tool(timeout=0.2)
    async def lookup(q: str) -> str:
        """Look something up; hangs past its timeout."""
        await asyncio.sleep(3600)
        return "never"

    return lookup


def _non_json() -> FunctionTool:
    @function_tool
    async def lookup(q: str) -> Any:
        """Returns something JSON cannot encode."""
        return {"when": Unserializable()}

    return lookup


def _nan_and_bytes() -> FunctionTool:
    @function_tool
    async def lookup(q: str) -> Any:
        """Returns bytes (not JSON)."""
        return b"\x00\x01"

    return lookup


def _circular() -> FunctionTool:
    @function_tool
    async def lookup(q: str) -> Any:
        """Returns a self-referencing structure."""
        data: dict[str, Any] = {}
        data["self"] = data
        return data

    return lookup


CASES: dict[str, tuple[Callable[[], FunctionTool], str]] = {
    "raises": (_raising, "lookup failed: KeyError"),
    "raises_tool_error": (_tool_error, "The opening hours service is down."),
    "sync_raises": (_sync_raising, "lookup failed: ZeroDivisionError"),
    "hangs_past_timeout": (_timeout, "timed out after 0.2 s"),
    "returns_non_json": (_non_json, "not JSON-serializable"),
    "returns_bytes": (_nan_and_bytes, "not JSON-serializable"),
    "returns_circular": (_circular, "not JSON-serializable"),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_faulty_tool_gets_exactly_one_error_output(case: str) -> None:
    make, expected = CASES[case]
    agent = Agent("Tool agent.", tools=[make()])
    async with harness(scenario(), agent=agent, options=OPTIONS) as h:
        output = await run_tool_turn(h)
        assert expected in error_text(output)
        finished = [e for e in h.session.event_log if isinstance(e, ToolCallFinished)]
        assert len(finished) == 1 and finished[0].is_error
        # The session goes on: the next turn is answered, the tool is not run again.
        nxt = await h.turn("Thanks.", 2)
        assert nxt.playout.pulled and h.assistant_messages()[-1].text == "Anything else?"
        assert len(sent_outputs(h)) == 1
        await h.settled()
        assert h.session.agent_state == "listening"


@pytest.mark.parametrize(
    ("arguments", "name", "expected"),
    [
        ('{"q": ', "lookup", "not valid JSON"),
        ("[1, 2]", "lookup", "must be a JSON object"),
        ({"q": 5, "extra": True}, "lookup", "invalid arguments for lookup"),
        ({"q": "x"}, "no_such_tool", "unknown tool 'no_such_tool'"),
    ],
    ids=["broken-json", "not-an-object", "schema-mismatch", "unknown-tool"],
)
async def test_bad_calls_from_the_model_get_an_error_output(
    arguments: Any, name: str, expected: str
) -> None:
    calls: list[str] = []

    @function_tool
    async def lookup(q: str) -> str:
        """Look something up."""
        calls.append(q)
        return "9 to 6"

    # The sim only emits calls to declared tools; declare the unknown one to the model only.
    agent = Agent("Tool agent.", tools=[lookup])
    async with harness(scenario(arguments, name), agent=agent, options=OPTIONS, start=False) as h:
        if name != "lookup":
            ghost = FunctionTool(_ghost, name=name)
            await h.session.start(agent)
            await h.session.update_agent(Agent("Tool agent.", tools=[lookup, ghost]))
            h.session._executor.set_tools([lookup])  # the app dropped it meanwhile
        else:
            await h.session.start(agent)
        output = await run_tool_turn(h)
        assert expected in error_text(output)
        assert calls == []


async def _ghost(q: str) -> str:
    """A tool the model was told about."""
    return "unused"


async def test_tool_without_timeout_hanging_does_not_block_the_next_turn() -> None:
    """A tool that never returns keeps its call open, but the caller can still talk."""
    release = asyncio.Event()

    @function_tool
    async def lookup(q: str) -> str:
        """Never returns until released."""
        await release.wait()
        return "9 to 6"

    script = scenario()
    script["responses"][1] = {"say": "You asked again."}
    async with harness(script, agent=Agent("Tool agent.", tools=[lookup]), options=OPTIONS) as h:
        h.say("What are the opening hours?")
        first = await h.response(0)
        await h.play_until(lambda: first.playout_finished)
        assert first.calls and not first.settled  # settles once its call is answered
        await h.play(1.0)
        assert sent_outputs(h) == []  # still running
        second = await h.turn("Hello? Are you there?", 1)
        assert h.assistant_messages()[-1].text == "You asked again."
        assert second.handle.kind == "server"
        release.set()
        await h.until(lambda: len(sent_outputs(h)) == 1)
        await h.until(lambda: first.settled)
        await h.settled()
        # Exactly one output, and no follow-up for a turn the caller already moved past.
        assert len(sent_outputs(h)) == 1
        assert [r.handle.kind for r in h.runs] == ["server", "server"]
