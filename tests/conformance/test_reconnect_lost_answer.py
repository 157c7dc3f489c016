"""After a reconnect, a caller turn whose answer was lost with the socket is answered — once.

The drop lands right before `response.created` of the server-VAD reply: the caller's turn was
committed (and transcribed), but no response ever reached the client. Without help the caller
waits in silence until they speak again. The runtime re-requests the reply after the reconnect
when the last heard item is that unanswered user turn, and never when the caller already heard
an answer (in full or in part) — that would be a double answer.

The sim shares one script across connections (`script_scope: server`), so the answer scripted
after the lost one is what the new connection says; the fault fires once.
"""

from __future__ import annotations

from typing import Any

from conformance_support import Harness, harness, server_vad

from vocalis.conversation.items import MessageItem
from vocalis.runtime.options import AgentSessionOptions
from vocalis.runtime.response import ResponseRun

FIRST = "First answer here."
LOST = "This answer is lost with the socket."
ANSWER = "The museum opens at nine in the morning."
QUESTION = "When does the museum open?"


def scenario(fault: dict[str, Any], second: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "server": {"script_scope": "server"},
        "responses": [
            {"say": FIRST, "user_transcript": "Hello there."},
            {**(second or {"say": LOST}), "user_transcript": QUESTION, "faults": [fault]},
            {"say": ANSWER},
        ],
    }


OPTIONS = AgentSessionOptions(
    turn_detection=server_vad(), input_transcription_model="gpt-4o-mini-transcribe"
)


async def answer_cut_by_the_drop(h: Harness) -> ResponseRun:
    """Greet, then ask QUESTION and play its answer until it settles — the drop fault in the
    scenario ends it (after it was heard in full, or part-way): the shared run-up of the
    heard-answer tests."""
    h.say("Hello there.")
    first = await h.response(0)
    await h.play_until(lambda: first.settled)
    h.say(QUESTION)
    cut = await h.response(1)
    await h.play_until(lambda: cut.settled, limit_s=20)
    return cut


async def test_turn_whose_answer_was_lost_is_answered_after_the_reconnect() -> None:
    drop = {"kind": "drop", "before_response_created": True}
    async with harness(scenario(drop), options=OPTIONS) as h:
        h.say("Hello there.")
        first = await h.response(0)
        await h.play_until(lambda: first.settled)
        h.say(QUESTION)
        # The drop: a second connection, no response for the question on the first one.
        await h.until(lambda: len(h.server.sessions) == 2)
        second_sim = h.server.sessions[1]
        # Without the caller speaking again, the question is answered on the new connection.
        answer = await h.response(1)
        await h.play_until(lambda: answer.settled)
        await h.settled()
        assert answer.handle.kind == "reply"
        said = [m.text for m in h.assistant_messages()]
        assert said == [FIRST, ANSWER]
        # The question is in the history once, right before its answer.
        history = h.session.history
        users = [i for i in history if isinstance(i, MessageItem) and i.role == "user"]
        assert [u.text for u in users] == ["Hello there.", QUESTION]
        assert history[-2] is users[-1]
        assert history[-1].id == answer.playout.pulled[0].message.item_id
        # Provider side: the new connection got the question replayed before it answered,
        # and exactly one response.create (ours), one response in total.
        creates = [e for e in second_sim.client_events if e["type"] == "response.create"]
        assert len(creates) == 1
        replayed = [
            e["item"] for e in second_sim.client_events if e["type"] == "conversation.item.create"
        ]
        assert [i["content"][0]["text"] for i in replayed if i.get("role") == "user"] == [
            "Hello there.",
            QUESTION,
        ]
        assert len(h.runs) == 2
        assert h.session.agent_states[-3:] == ["thinking", "speaking", "listening"]


async def test_no_second_answer_when_the_caller_heard_it_all() -> None:
    """The answer was heard in full; the socket dies right after response.done."""
    fault = {"kind": "drop", "after_event": "response.done"}
    long = {"say": "The museum opens at nine and closes at six, every day except Monday."}
    async with harness(scenario(fault, long), options=OPTIONS) as h:
        cut = await answer_cut_by_the_drop(h)
        await h.until(lambda: len(h.server.sessions) == 2)
        second_sim = h.server.sessions[1]
        # Re-synced and idle: give a re-request every chance to (wrongly) appear.
        await h.until(lambda: h.provider_connected)
        await h.settled()
        await h.play(1.0)
        await h.settled()
        assert len(h.runs) == 2
        assert not [e for e in second_sim.client_events if e["type"] == "response.create"]
        assert h.assistant_messages()[-1].id == cut.playout.pulled[0].message.item_id
        assert h.session.agent_state == "listening"


async def test_answer_cut_by_the_drop_is_continued_once() -> None:
    """Part of the answer was heard; the rest died with the socket. Nobody took the floor, so
    the answer goes on, once, on the new connection — told where the caller stopped hearing."""
    fault = {"kind": "drop", "after_audio_ms": {"item": 0, "ms": 600}}
    long = {"say": "The museum opens at nine and closes at six, every day except Monday."}
    async with harness(scenario(fault, long), options=OPTIONS) as h:
        cut = await answer_cut_by_the_drop(h)
        again = await h.response(2)
        await h.play_until(lambda: again.settled)
        await h.settled()
        await h.play(1.0)
        await h.settled()
        second_sim = h.server.sessions[1]
        (create,) = [e for e in second_sim.client_events if e["type"] == "response.create"]
        assert OPTIONS.lost_reply_instructions in create["response"]["instructions"]
        partial, answer = h.assistant_messages()[-2:]
        assert partial.id == cut.playout.pulled[0].message.item_id
        assert partial.cut_by == "connection" and not partial.interrupted and partial.text
        assert answer.text == ANSWER and len(h.runs) == 3
        assert h.session.agent_state == "listening"


async def test_tool_follow_up_lost_with_the_socket_is_requested_again() -> None:
    """The follow-up reply after a tool is requested, and the socket dies before the provider
    creates it: the request is sent again on the new connection — answered once."""
    from vocalis.runtime.agent import Agent
    from vocalis.runtime.tools import function_tool

    @function_tool
    async def opening_hours(place: str) -> str:
        """Opening hours of a place."""
        return "9 to 18"

    scenario = {
        "server": {"script_scope": "server"},
        "responses": [
            {
                "user_transcript": QUESTION,
                "items": [
                    {"say": "Let me check."},
                    {"call": "opening_hours", "arguments": {"place": "museum"}, "call_id": "c1"},
                ],
            },
            {"say": LOST, "faults": [{"kind": "drop", "before_response_created": True}]},
            {"say": ANSWER},
        ],
    }
    async with harness(scenario, options=OPTIONS, start=False) as h:
        await h.session.start(Agent("Museum agent.", tools=[opening_hours]))
        h.say(QUESTION)
        first = await h.response(0)
        await h.play_until(lambda: first.settled)
        await h.until(lambda: len(h.server.sessions) == 2)
        follow = await h.response(1)
        await h.play_until(lambda: follow.settled)
        await h.settled()
        assert follow.handle.kind == "tool_followup" and not follow.handle.error
        assert [m.text for m in h.assistant_messages()] == ["Let me check.", ANSWER]
        assert [o.call_id for o in h.outputs()] == ["c1"]
        creates = [e for e in h.server.sessions[1].client_events if e["type"] == "response.create"]
        assert len(creates) == 1 and len(h.runs) == 2
        assert h.session.agent_state == "listening"
