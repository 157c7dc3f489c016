"""Fault matrix, provider side: the connection drops at each phase of a response.

Every case: a first turn fully heard, then the second response loses its socket at one protocol
position (the sim aborts TCP, no close frame). Then:

* the session reconnects by itself (a second provider connection, `SessionReconnected`);
* the part the caller heard stays in the history, and is what the new connection is given;
* nothing the caller did not hear is replayed (checked on the new connection's client events);
* the caller's next turn gets an answer that plays;
* nothing hangs (every wait is bounded), no task or fd outlives the session.

The sim shares one script across connections (`script_scope: server`): response 0 answers the
first turn, the fault sits on response 1 (it fires once), and the plain answers after it are
what the new connection says. When the drop cut the answer before it finished (every phase but
`after_response_done`), the session answers by itself after the reconnect, once: a disconnect
is not a barge-in, nobody took the floor. An answer that finished waits for the caller.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from reliability_support import (
    Harness,
    check_provider_matches,
    harness,
    history_is_json,
    server_vad,
)

from vocalis.conversation.items import FunctionCallItem
from vocalis.runtime.agent import Agent
from vocalis.runtime.events import ErrorEvent
from vocalis.runtime.options import AgentSessionOptions
from vocalis.runtime.tools import function_tool

FIRST = "First answer here."
PREAMBLE = "Let me look that up for you right now."
ANSWER = "The museum opens at nine in the morning and closes at six in the evening."
LONG = "This reply is long enough that a broken connection cuts it somewhere in the middle."


def drop(**position: Any) -> dict[str, Any]:
    return {"kind": "drop", **position}


CASES: dict[str, dict[str, Any]] = {
    "before_response_created": {"say": LONG, "faults": [drop(before_response_created=True)]},
    "after_item_added_before_audio": {
        "say": LONG,
        "faults": [drop(after_event="response.output_item.added")],
    },
    "mid_audio_of_message_1": {
        "items": [{"say": PREAMBLE}, {"say": ANSWER}],
        "faults": [drop(after_audio_ms={"item": 0, "ms": 800})],
    },
    "between_messages": {
        "items": [{"say": PREAMBLE}, {"say": ANSWER}],
        "faults": [drop(after_event="response.output_item.done", output_index=0)],
    },
    "mid_function_call_arguments": {
        "items": [
            {"say": PREAMBLE},
            {
                "call": "find_hours",
                "arguments": {"place": "the city museum of modern art and design"},
                "call_id": "call_drop",
            },
        ],
        "faults": [drop(after_event="response.function_call_arguments.delta")],
    },
    "after_response_done": {"say": LONG, "faults": [drop(after_event="response.done")]},
}


# Phases where the answer did not finish: the caller is answered after the reconnect.
LOST_ANSWER = tuple(phase for phase in CASES if phase != "after_response_done")


@function_tool
async def find_hours(place: str) -> str:
    """Opening hours of a place."""
    return "9 to 6"


async def _reconnected(h: Harness) -> None:
    """The second connection is up, configured, and the history re-sync has run."""
    await h.sim_session(2)
    await h.until(lambda: h.provider_connected)
    await h.settled()


@pytest.mark.parametrize("phase", list(CASES))
async def test_connection_drop(phase: str) -> None:
    scenario = {
        "server": {"script_scope": "server"},
        "responses": [
            {"say": FIRST, "user_transcript": "Hello there."},
            {**CASES[phase], "user_transcript": "When does the museum open?"},
            {"say": FIRST},  # the re-answered turn (LOST_ANSWER) or the next turn
            {"say": FIRST},  # the next turn after a re-answered one
        ],
    }
    agent = Agent("You are a test agent.", tools=[find_hours])
    # Caller turns are audio: only their transcripts can be replayed into a new connection.
    options = AgentSessionOptions(
        turn_detection=server_vad(), input_transcription_model="gpt-4o-mini-transcribe"
    )
    async with harness(scenario, agent=agent, options=options) as h:
        first = await h.turn("Hello there.", 0)
        assert [m.text for m in h.assistant_messages()] == [FIRST]
        old = h.sim

        h.say("When does the museum open?")
        if phase == "before_response_created":
            # No response ever started on the old connection: nothing to play or settle.
            await h.sim_session(2)
        else:
            cut = await h.response(1)
            await h.finish(cut)
            status = cut.done_info.status if cut.done_info else None
            assert status == ("completed" if phase == "after_response_done" else "disconnected")
        # The first answer, and the cut one unless the drop came before it was created.
        settled_runs = 1 if phase == "before_response_created" else 2
        reanswer = None
        if phase in LOST_ANSWER:
            # The answer died unfinished: the caller is answered on the new connection, unasked.
            reanswer = await h.response(settled_runs, generated=False)
            await h.finish(reanswer)
            assert reanswer.handle.kind == "reply" and h.assistant_messages()[-1].text == FIRST
        await _reconnected(h)
        assert len(h.runs) == settled_runs + (1 if reanswer is not None else 0)
        assert old.closed and old.close_code == 1006
        new = h.sim
        assert new is not old

        answered = h.assistant_messages()
        if reanswer is not None:
            answered = answered[:-1]  # said on the new connection, not replayed into it
        heard = {m.id: m for m in answered}
        pulled = [p.message for p in h.runs[1].playout.pulled] if settled_runs > 1 else []
        if phase == "after_item_added_before_audio":
            assert len(pulled) <= 1 and all(m.id != pulled[0].item_id for m in heard.values())
        if phase == "mid_audio_of_message_1":
            (message,) = pulled
            kept = heard[message.item_id]
            # All the audio that arrived before the drop played, and only that.
            assert kept.cut_by == "connection" and not kept.interrupted
            assert kept.played_ms is not None and 800 <= kept.played_ms < 1100
            assert abs(kept.played_ms - message.audio_received_ms) <= 20
            assert PREAMBLE.startswith(kept.text)
        if phase in ("between_messages", "mid_function_call_arguments"):
            preamble = pulled[0]
            assert heard[preamble.item_id].text == PREAMBLE
            # Message 2 was never announced (between) / the call never completed (mid call).
            assert [m.text for m in answered] == [FIRST, PREAMBLE]
        if phase == "mid_function_call_arguments":
            assert not [i for i in h.session.history if isinstance(i, FunctionCallItem)]
            assert not h.session.tool_runs  # an incomplete call is never executed
        if phase == "after_response_done":
            assert [m.text for m in answered] == [FIRST, LONG]

        # The new connection was given exactly the heard history: the first answer in full,
        # the cut answer as far as it was heard, nothing never heard (no audio, no half call).
        replayed = h.created_items(new)
        replayed_assistant = [i["id"] for i in replayed if i.get("role") == "assistant"]
        assert replayed_assistant == [m.id for m in answered]
        assert not [i for i in replayed if i.get("type") == "function_call"]
        check_provider_matches(h, new)
        users = [i["content"][0]["text"] for i in replayed if i.get("role") == "user"]
        assert users == ["Hello there.", "When does the museum open?"]  # both caller turns

        # The caller's next turn is answered on the new connection, and plays.
        after = await h.turn("Are you still there?", len(h.runs))
        assert after.done_info is not None and after.done_info.status == "completed"
        assert h.recorder.played_ms(after.playout.pulled[0].message.item_id) > 0
        assert h.assistant_messages()[-1].text == FIRST  # the next scripted answer
        await h.settled()
        check_provider_matches(h, new)
        assert h.session.agent_state == "listening"
        # The drop is handled, not an error the app must act on.
        assert not [e for e in h.tracker.errors if not e.recoverable]
        assert first.settled
        saved = history_is_json(h)
        assert json.dumps(saved)
        runtime_errors = [
            e for e in h.session.event_log if isinstance(e, ErrorEvent) and e.source == "runtime"
        ]
        assert not runtime_errors  # no task of the session crashed
