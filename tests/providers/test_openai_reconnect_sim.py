"""Reconnects against the real local server: drop mid-response, `session_expired`, proactive
recycling, fatal errors, and the API key never reaching a log line.

The replayed history is checked on the *new* connection's `client_events` in the server log.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest

from vocalis.conversation.items import MessageItem
from vocalis.providers.base import (
    Generation,
    InputAudioCommitted,
    InputTranscription,
    MessageGeneration,
    OperationError,
    ProviderError,
    SessionClosed,
    SessionOptions,
    SessionReconnected,
    ToolSpec,
    TurnDetection,
)
from vocalis.providers.openai.realtime import OpenAIRealtimeSession
from vocalis.sim.log import read_log
from vocalis.sim.server import SimServer

from .openai_sim_support import (
    FAKE_KEY,
    append_in_frames,
    consume,
    silence,
    sim_session,
    tone,
)

pytestmark = pytest.mark.usefixtures("websocket_backend")


def creates(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e["item"] for e in events if e["type"] == "conversation.item.create"]


async def first_turn(session: OpenAIRealtimeSession) -> MessageItem:
    """u1 + a completed, fully heard reply; syncs the heard history. Returns the reply item."""
    user = MessageItem(id="u1", role="user", text="Hi")
    await session.create_item(user)
    generation = await session.generate_reply()
    (played,) = await consume(generation)
    assert (await generation.done).status == "completed"
    heard = MessageItem(
        id=played.message.item_id,
        role="assistant",
        text=played.text,
        played_ms=played.message.audio_received_ms,
    )
    await session.sync_history([user, heard])
    return heard


async def started_message(generation: Generation) -> MessageGeneration:
    return await asyncio.wait_for(generation.messages.recv(), 10)


def assert_replayed(items: list[dict[str, Any]], reply: MessageItem) -> None:
    assert items[0] == {
        "id": "u1",
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": "Hi"}],
    }
    # The assistant turn comes back as heard text, never audio.
    assert items[1] == {
        "id": reply.id,
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": reply.text}],
    }


DROP_SCENARIO = {
    "responses": [
        {"say": "First answer here."},
        {
            "say": "A second answer that a network failure cuts off in the middle.",
            "faults": [{"kind": "drop", "after_audio_ms": {"item": 0, "ms": 200}}],
        },
    ]
}


async def test_reconnect_after_drop_mid_response_replays_heard_history(tmp_path: Path) -> None:
    log = tmp_path / "sim.jsonl"
    async with sim_session(DROP_SCENARIO, server_kwargs={"log_path": log}) as (
        server,
        session,
        reader,
    ):
        reply = await first_turn(session)
        # The heard history equals the provider state: the sync sent nothing.
        old = server.sessions[0]
        assert [e["type"] for e in old.client_events].count("conversation.item.create") == 1
        await session.create_item(MessageItem(id="u2", role="user", text="And then?"))

        generation = await session.generate_reply()
        cut = await started_message(generation)
        done = await asyncio.wait_for(generation.done, 10)
        assert done.status == "disconnected"
        assert cut.status == "disconnected"
        assert cut.audio.closed and cut.text.closed and generation.messages.closed
        # Input during the gap goes nowhere (never into the next session).
        append_in_frames(session, tone(100))

        event = await reader.wait_type(SessionReconnected)
        assert event.reason == "dropped"
        assert event.replayed_item_ids == ("u1", reply.id, "u2")
        # u2 is the replay's last item, but its answer had started (the cut generation).
        assert event.unanswered_item_id is None
        new = await server.wait_for_session(2)
        types = [e["type"] for e in new.client_events]
        assert types == ["session.update"] + ["conversation.item.create"] * 3
        items = creates(new.client_events)
        assert_replayed(items, reply)
        assert items[2]["content"] == [{"type": "input_text", "text": "And then?"}]
        assert session.dropped_audio_samples > 0

        # The runtime's late truncate of the cut item: it does not exist any more, skipped.
        await session.truncate(cut.item_id, 150.0)
        await session.delete_item(cut.item_id)
        assert [e["type"] for e in new.client_events] == types
        # The new session answers.
        follow = await session.generate_reply()
        assert len(await consume(follow)) == 1
        assert [i.id for i in new.conversation.items][:3] == ["u1", reply.id, "u2"]
        assert not reader.of_type(ProviderError)
    # The server's JSONL log says the same: the new connection got the config, then the heard
    # history, and its final state starts with it.
    records = read_log(log)
    logged = [r["event"] for r in records if r["session"] == new.id and r["dir"] == "in"]
    assert [e["type"] for e in logged][:4] == types
    assert creates(logged)[:3] == items
    (state,) = [r["state"] for r in records if r["dir"] == "state" and r["session"] == new.id]
    assert [i["id"] for i in state["conversation"]][:3] == ["u1", reply.id, "u2"]


async def test_reconnect_after_session_expired() -> None:
    scenario = {
        "responses": [
            {"say": "First answer here."},
            {
                "say": "This answer runs into the session limit.",
                "faults": [
                    {"kind": "session_expired", "after_event": "response.output_audio.delta"}
                ],
            },
        ]
    }
    async with sim_session(scenario) as (server, session, reader):
        reply = await first_turn(session)
        # Options changed during the call are what the new session is configured with.
        tool = ToolSpec("lookup", "Look something up.", {"type": "object", "properties": {}})
        updated = SessionOptions(instructions="Be brief.", turn_detection=None, tools=(tool,))
        await session.update_options(updated)
        generation = await session.generate_reply()
        assert (await asyncio.wait_for(generation.done, 10)).status == "disconnected"
        event = await reader.wait_type(SessionReconnected)
        assert event.reason == "session_expired"
        restored = (await server.wait_for_session(2)).config.session
        assert restored["instructions"] == "Be brief."
        assert [t["name"] for t in restored["tools"]] == ["lookup"]
        assert restored["audio"]["input"]["turn_detection"] is None
        assert event.replayed_item_ids == ("u1", reply.id)
        assert event.unanswered_item_id is None
        new = await server.wait_for_session(2)
        assert_replayed(creates(new.client_events), reply)
        # `session_expired` is handled, not surfaced as an error.
        assert not reader.of_type(ProviderError)
        assert server.sessions[0].close_code == 1001


async def test_proactive_recycle_waits_for_the_active_response() -> None:
    scenario = {
        "responses": [
            {"say": "First answer here."},
            {
                "say": "A reply that must not be cut by the recycle.",
                "faults": [{"kind": "stall", "seconds": 0.4, "after_event": "response.created"}],
            },
        ]
    }
    async with sim_session(scenario, max_session_seconds=0.2) as (server, session, reader):
        reply = await first_turn(session)
        generation = await session.generate_reply()
        played = await consume(generation)
        done = await asyncio.wait_for(generation.done, 10)
        assert done.status == "completed" and len(played) == 1
        event = await reader.wait_type(SessionReconnected)
        assert event.reason == "max_duration"
        new = await server.wait_for_session(2)
        assert_replayed(creates(new.client_events), reply)
        # The response finished on the old socket before it was closed.
        old_types = server.sessions[0].server_types()
        assert old_types.count("response.done") == 2


async def test_fatal_error_closes_the_session() -> None:
    scenario = {
        "responses": [
            {
                "say": "Never mind.",
                "faults": [
                    {
                        "kind": "error",
                        "code": "insufficient_quota",
                        "message": "You exceeded your current quota.",
                        "after_event": "response.created",
                    }
                ],
            }
        ]
    }
    async with sim_session(scenario) as (server, session, reader):
        generation = await session.generate_reply()
        closed = await reader.wait_type(SessionClosed)
        assert closed.reason == "fatal"
        assert closed.error is not None and closed.error.code == "insufficient_quota"
        assert (await asyncio.wait_for(generation.done, 10)).status == "disconnected"
        assert len(server.sessions) == 1  # no reconnect loop on a fatal code
        errors = reader.of_type(ProviderError)
        assert errors and errors[0].fatal


async def test_api_key_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(1)  # everything: picows logs its frames and handshake below DEBUG
    async with sim_session(DROP_SCENARIO) as (server, session, reader):
        await first_turn(session)
        generation = await session.generate_reply()
        await asyncio.wait_for(generation.done, 10)
        await reader.wait_type(SessionReconnected)
        assert FAKE_KEY not in repr(session.capabilities) + repr(session._model)
    # The simulator's own server-side handshake log (websockets.server) is not the client's
    # and is excluded; everything the client side logged is checked.
    records = [r for r in caplog.records if not r.name.startswith("websockets.server")]
    text = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in records)
    # The handshake headers were logged (the path is exercised) — with the value redacted.
    # websockets logs each header, picows the raw request (`Authorization: Bearer <redacted>`).
    assert re.search(r"Authorization: (Bearer )?<redacted>", text)
    assert FAKE_KEY not in text
    assert FAKE_KEY[8:] not in text
    assert len(server.sessions) == 2


async def test_unknown_and_malformed_server_frames_do_not_break_the_session() -> None:
    scenario = {
        "responses": [
            {
                "say": "Still talking after garbage.",
                "faults": [
                    {"kind": "unknown_event", "after_event": "response.created"},
                    {"kind": "malformed_frame", "after_event": "response.content_part.added"},
                ],
            }
        ]
    }
    async with sim_session(scenario) as (_, session, reader):
        generation = await session.generate_reply()
        (played,) = await consume(generation)
        assert played.text == "Still talking after garbage."
        assert (await generation.done).status == "completed"
        assert not reader.of_type(ProviderError)


async def test_closed_session_rejects_operations() -> None:
    async with SimServer(pace=0.0) as server:
        from vocalis.providers.openai.realtime import OpenAIRealtimeModel

        model = OpenAIRealtimeModel(api_key=FAKE_KEY, base_url=server.url.removesuffix("/realtime"))
        session = await model.connect(SessionOptions(turn_detection=None))
        await session.aclose()
        events = [e async for e in session.events()]
        assert [type(e) for e in events] == [SessionClosed]
        with pytest.raises(Exception, match="closed"):
            await session.generate_reply()
        await session.truncate("x", 10)  # history edits on a closed session are no-ops


async def test_gives_up_after_the_reconnect_attempts() -> None:
    from vocalis.providers.openai.realtime import OpenAIRealtimeModel

    server = SimServer(pace=0.0)
    await server.start()
    model = OpenAIRealtimeModel(
        api_key=FAKE_KEY,
        base_url=server.url.removesuffix("/realtime"),
        max_reconnect_attempts=2,
        reconnect_backoff_s=0.01,
    )
    session = await model.connect(SessionOptions(turn_detection=None))
    await server.stop()  # the server goes away for good
    events = [e async for e in session.events()]
    closed = events[-1]
    assert isinstance(closed, SessionClosed) and closed.reason == "reconnect_failed"
    assert not any(isinstance(e, SessionReconnected) for e in events)
    await session.aclose()


async def test_a_turn_lost_before_response_created_is_reported_unanswered() -> None:
    """The socket drops between the caller's committed turn and the server's response: the
    turn is replayed as the new session's last item and reported as owed a reply."""
    scenario = {
        "server": {"script_scope": "server"},  # the new connection continues the script
        "responses": [
            {
                "user_transcript": "What time is it?",
                "say": "Never heard.",
                "faults": [{"kind": "drop", "before_response_created": True}],
            },
            {"say": "It is noon."},
        ],
    }
    options = SessionOptions(
        turn_detection=TurnDetection(type="server_vad", silence_duration_ms=200),
        input_transcription_model="gpt-4o-mini-transcribe",
    )
    async with sim_session(scenario, options) as (server, session, reader):
        append_in_frames(session, tone(400))
        append_in_frames(session, silence(400))
        committed = await reader.wait_type(InputAudioCommitted)
        await reader.wait_for(lambda e: isinstance(e, InputTranscription) and e.final)
        event = await reader.wait_type(SessionReconnected)
        assert event.replayed_item_ids == (committed.item_id,)
        assert event.unanswered_item_id == committed.item_id
        new = await server.wait_for_session(2)
        assert creates(new.client_events)[-1]["content"] == [
            {"type": "input_text", "text": "What time is it?"}
        ]
        # Nothing answers on its own; the runtime asks, and the caller gets the answer.
        reply = await session.generate_reply()
        (played,) = await consume(reply)
        assert played.text == "It is noon."
        assert [(i.role, i.text) for i in new.conversation.items] == [
            ("user", "What time is it?"),
            ("assistant", "It is noon."),
        ]


async def test_a_tool_output_whose_follow_up_was_lost_is_reported_unanswered() -> None:
    scenario = {
        "server": {"script_scope": "server"},
        "responses": [
            {"items": [{"call": "lookup", "arguments": {"q": "time"}}]},
            {"say": "Lost.", "faults": [{"kind": "drop", "before_response_created": True}]},
            {"say": "It is noon."},
        ],
    }
    tool = ToolSpec("lookup", "Look up.", {"type": "object", "properties": {}})
    options = SessionOptions(turn_detection=None, tools=(tool,))
    async with sim_session(scenario, options) as (_, session, reader):
        await session.create_item(MessageItem(id="u1", role="user", text="Time?"))
        first = await session.generate_reply()
        call = await asyncio.wait_for(first.tool_calls.recv(), 10)
        await first.done
        output_id = await session.send_tool_output(call.call_id, "12:00")
        with pytest.raises(OperationError):  # the follow-up request dies with the socket
            await session.generate_reply()
        event = await reader.wait_type(SessionReconnected)
        assert event.replayed_item_ids[-1] == event.unanswered_item_id == output_id
