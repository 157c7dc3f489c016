"""The protocol core on its own: no sockets, no asyncio, outputs in, outputs out."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from vocalis.sim.commands import Output, StartResponse, StopResponse
from vocalis.sim.protocol import HANDLERS, ProtocolCore
from vocalis.sim.responses import ResponseRun
from vocalis.sim.scenario import Scenario, load_scenario


def _core(scenario: Scenario | None = None) -> ProtocolCore:
    core = ProtocolCore(index=0, model="gpt-realtime", scenario=scenario or Scenario())
    core.start()
    return core


def _events(outputs: list[Output]) -> list[dict[str, Any]]:
    return [o for o in outputs if isinstance(o, dict)]


def _play(core: ProtocolCore, run: ResponseRun, upto: int | None = None) -> list[Output]:
    """What the driver does with a StartResponse: pull the stream into the core."""
    outputs = core.response_created(run)
    for element in itertools.islice(run.stream(), upto):
        if isinstance(element, dict):
            outputs += core.response_event(run, element)
    return outputs


def test_a_response_is_a_command_and_its_stream_settles_it() -> None:
    core = _core(load_scenario({"responses": ["Hello there."]}))
    text = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]}
    added = core.handle({"type": "conversation.item.create", "item": text})
    assert [e["type"] for e in _events(added)] == [
        "conversation.item.added",
        "conversation.item.done",
    ]
    outputs = core.handle({"type": "response.create"})
    (start,) = [o for o in outputs if isinstance(o, StartResponse)]
    assert core.active is start.run
    busy = _events(core.handle({"type": "response.create", "event_id": "e1"}))
    assert busy[0]["error"]["code"] == "conversation_already_has_active_response"
    assert busy[0]["error"]["event_id"] == "e1"
    done = _events(_play(core, start.run))[-1]
    assert done["type"] == "response.done" and done["response"]["status"] == "completed"
    assert core.active is None


def test_cancel_stops_the_stream_and_ends_the_response_once() -> None:
    core = _core(load_scenario({"responses": ["A fairly long answer that keeps going."]}))
    (start,) = [o for o in core.handle({"type": "response.create"}) if isinstance(o, StartResponse)]
    _play(core, start.run, upto=8)
    cancelled = core.handle({"type": "response.cancel"})
    assert StopResponse(start.run.id) in cancelled
    assert _events(cancelled)[-1]["response"]["status"] == "cancelled"
    again = _events(core.handle({"type": "response.cancel"}))
    assert again[0]["error"]["code"] == "response_cancel_not_active"


CLIENT_EVENTS = st.sampled_from(
    [
        {"type": "response.create"},
        {"type": "response.create", "response": {"conversation": "none"}},
        {"type": "response.cancel"},
        {"type": "response.cancel", "response_id": "resp_unknown"},
        {"type": "input_audio_buffer.commit"},
        {"type": "input_audio_buffer.clear"},
        {"type": "conversation.item.delete", "item_id": "nope"},
        {"type": "conversation.item.truncate", "item_id": "nope", "audio_end_ms": 5},
        {"type": "session.update", "session": {"type": "realtime", "instructions": None}},
        {"type": "session.update", "session": {"type": "transcription"}},
        {"type": "no.such.event"},
        {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "hi"}],
            },
        },
    ]
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(CLIENT_EVENTS, st.integers(0, 40)), max_size=12))
def test_random_client_events_keep_the_core_consistent(
    steps: list[tuple[dict[str, Any], int]],
) -> None:
    """Whatever the client sends: one default response at most, every started response ends
    exactly once with response.done, and errors are always well-formed events."""
    core = _core(load_scenario({"responses": ["One.", "Two words.", "Three more words."]}))
    started: dict[str, ResponseRun] = {}
    done: list[str] = []
    for event, pulls in steps:
        outputs = core.handle(dict(event))
        for output in outputs:
            if isinstance(output, StartResponse):
                started[output.run.id] = output.run
        for run in list(started.values()):
            if not run.finished:
                outputs += _play(core, run, upto=pulls)
        for e in _events(outputs):
            if e["type"] == "error":
                assert set(e["error"]) == {"type", "code", "message", "param", "event_id"}
            if e["type"] == "response.done":
                done.append(e["response"]["id"])
        in_conversation = [
            r for r in started.values() if not r.finished and r.conversation is not None
        ]
        assert len(in_conversation) <= 1
        assert core.active is None or core.active in in_conversation
    assert len(done) == len(set(done))  # never two response.done for one response
    assert set(done) == {rid for rid, run in started.items() if run.finished}


def test_every_client_event_type_has_a_handler() -> None:
    assert "response.create" in HANDLERS and len(HANDLERS) == 11
