"""The OpenAI GA client against the real local server (`vocalis.sim`): protocol doc §4 end to end.

Every check on what the client *sent* reads the server's own log (`client_events`).
"""

from __future__ import annotations

import asyncio
import json
import math

import pytest

from vocalis.conversation.items import MessageItem
from vocalis.providers.base import (
    ErrorKind,
    GenerationStarted,
    InputAudioCommitted,
    InputSpeechStarted,
    InputSpeechStopped,
    OperationError,
    ProviderError,
    SessionOptions,
    ToolSpec,
    TurnDetection,
)

from .openai_sim_support import (
    append_in_frames,
    client_types,
    consume,
    silence,
    sim_session,
    tone,
    until,
    wait_audio,
)

pytestmark = pytest.mark.usefixtures("websocket_backend")

WEATHER = ToolSpec(
    name="get_weather",
    description="Weather for a city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}},
)


# --------------------------------------------------------------------------- (a) single message


async def test_single_message_reply_to_text() -> None:
    scenario = {"responses": [{"say": "Hello from the simulator."}]}
    async with sim_session(scenario) as (server, session, reader):
        await session.create_item(MessageItem(id="u1", role="user", text="Hi!"))
        generation = await session.generate_reply()
        played = await consume(generation)
        done = await generation.done

        assert done.status == "completed"
        assert len(played) == 1
        (p,) = played
        assert p.text == "Hello from the simulator."
        assert p.samples > 0 and p.message.status == "completed"
        sim = server.sessions[0]
        server_item = sim.conversation.get(p.message.item_id)
        assert server_item is not None
        # Received audio per item equals what the server generated for it.
        assert p.message.audio_received_ms == pytest.approx(server_item.audio_ms, abs=0.1)
        assert p.samples == round(p.message.audio_received_ms * 24)
        assert session.mirror.ids() == ["u1", p.message.item_id]

        sent = sim.client_events
        assert client_types(sent) == [
            "session.update",
            "conversation.item.create",
            "response.create",
        ]
        assert sent[0]["session"]["type"] == "realtime"
        request = sent[2]["response"]["metadata"]["client_event_id"]
        assert generation.request_id == request
        assert reader.of_type(GenerationStarted)[0].generation is generation


# --------------------------------------------------------------------------- (b) preambles


@pytest.mark.parametrize("ordering", ["overlapping", "sequential"])
async def test_preamble_and_answer_in_one_response(ordering: str) -> None:
    scenario = {
        "responses": [
            {
                "ordering": ordering,
                "items": [
                    {"say": "Let me check.", "phase": "commentary"},
                    {"say": "It is sunny in Paris today.", "phase": "final_answer"},
                ],
            }
        ]
    }
    async with sim_session(scenario) as (server, session, _):
        await session.create_item(MessageItem(id="u1", role="user", text="Weather?"))
        generation = await session.generate_reply()
        played = await consume(generation)
        done = await generation.done

        assert [p.text for p in played] == ["Let me check.", "It is sunny in Paris today."]
        assert [p.message.output_index for p in played] == [0, 1]
        assert done.output_item_ids == tuple(p.message.item_id for p in played)
        sim = server.sessions[0]
        for p in played:
            item = sim.conversation.get(p.message.item_id)
            assert item is not None
            assert p.message.audio_received_ms == pytest.approx(item.audio_ms, abs=0.1)
            assert p.message.status == "completed"
        assert [p.message.phase for p in played] in (
            [None, None],
            ["commentary", "final_answer"],
        )


async def test_preamble_function_call_then_tool_output_and_follow_up() -> None:
    scenario = {
        "responses": [
            {
                "ordering": "overlapping",
                "items": [
                    {"say": "One moment."},
                    {"call": "get_weather", "arguments": {"city": "Paris"}, "call_id": "call_w1"},
                ],
            },
            {"say": "It is eighteen degrees in Paris."},
        ]
    }
    options = SessionOptions(turn_detection=None, tools=(WEATHER,))
    async with sim_session(scenario, options) as (server, session, _):
        await session.create_item(MessageItem(id="u1", role="user", text="Weather in Paris?"))
        generation = await session.generate_reply()
        played = await consume(generation)
        calls = [c async for c in generation.tool_calls]
        deltas = [d async for d in generation.tool_call_deltas]
        await generation.done

        assert [p.text for p in played] == ["One moment."]
        assert len(calls) == 1
        call = calls[0]
        assert (call.name, call.call_id) == ("get_weather", "call_w1")
        assert json.loads(call.arguments) == {"city": "Paris"}
        assert "".join(d.delta for d in deltas) == call.arguments

        # (c) the tool output, then a new response requested by the client.
        output_id = await session.send_tool_output(call.call_id, '{"temp_c": 18}')
        follow_up = await session.generate_reply()
        (answer,) = await consume(follow_up)
        assert answer.text == "It is eighteen degrees in Paris."
        sim = server.sessions[0]
        assert [i.id for i in sim.conversation.items][-3:] == [
            call.item_id,
            output_id,
            answer.message.item_id,
        ]
        assert client_types(sim.client_events)[-2:] == [
            "conversation.item.create",
            "response.create",
        ]


async def test_second_reply_while_active_fails_fast() -> None:
    scenario = {
        "responses": [
            {
                "say": "A long answer that stalls for a while.",
                "faults": [{"kind": "stall", "seconds": 30, "after_event": "response.created"}],
            }
        ]
    }
    async with sim_session(scenario) as (_, session, _):
        first = await session.generate_reply()
        with pytest.raises(OperationError) as info:
            await session.generate_reply()
        assert info.value.kind is ErrorKind.BUSY
        assert info.value.code == "conversation_already_has_active_response"
        await session.cancel_response()
        assert (await asyncio.wait_for(first.done, 10)).status == "cancelled"


# --------------------------------------------------------------------------- (d) barge-in


async def test_server_vad_barge_in_then_truncate_at_heard_position() -> None:
    scenario = {
        "responses": [
            {
                "say": "Once upon a time there was a very long story that nobody heard to the end.",
                "faults": [
                    {"kind": "stall", "seconds": 30, "after_audio_ms": {"item": 0, "ms": 400}}
                ],
            }
        ]
    }
    options = SessionOptions(
        turn_detection=TurnDetection(type="server_vad", silence_duration_ms=200)
    )
    async with sim_session(scenario, options) as (server, session, reader):
        append_in_frames(session, tone(400))
        append_in_frames(session, silence(400))
        await reader.wait_type(InputAudioCommitted)
        generation = (await reader.wait_type(GenerationStarted)).generation
        message = await asyncio.wait_for(generation.messages.recv(), 10)
        await wait_audio(message, 400)

        # The caller talks over the reply: the server cancels it (interrupt_response).
        append_in_frames(session, tone(300))
        await reader.wait_for(
            lambda e: (
                isinstance(e, InputSpeechStarted) and len(reader.of_type(InputSpeechStarted)) == 2
            )
        )
        done = await asyncio.wait_for(generation.done, 10)
        assert (done.status, done.reason) == ("cancelled", "turn_detected")
        assert message.status == "cancelled"
        assert message.audio.closed and message.text.closed

        # Only 250.6 ms were played: truncate there (whole ms, rounded down).
        await session.truncate(message.item_id, 250.6)
        sim = server.sessions[0]
        truncates = [e for e in sim.client_events if e["type"] == "conversation.item.truncate"]
        assert len(truncates) == 1
        assert truncates[0]["item_id"] == message.item_id
        assert truncates[0]["audio_end_ms"] == 250 and truncates[0]["content_index"] == 0
        item = sim.conversation.get(message.item_id)
        assert item is not None and item.truncated_at_ms == 250
        assert session.mirror.get(message.item_id).truncated_ms == 250  # type: ignore[union-attr]
        kinds = [type(e) for e in reader.events]
        assert kinds.count(InputSpeechStopped) >= 1
        assert not reader.of_type(ProviderError)


# --------------------------------------------------------------------------- (e) client cancel


async def test_cuts_are_executed_as_given_and_retried_at_the_server_length() -> None:
    """The provider decides nothing about cuts (the ledger does): it sends the cut it is
    given, and only a wire concern remains — a cut past the server's own audio is retried
    once at the server's length."""
    scenario = {
        "responses": [
            {
                "ordering": "sequential",
                "items": [
                    {"say": "Here is the first part of a longer answer."},
                    {"say": "And a second part that never plays."},
                ],
                "faults": [
                    {"kind": "stall", "seconds": 30, "after_audio_ms": {"item": 0, "ms": 300}}
                ],
            }
        ]
    }
    async with sim_session(scenario) as (server, session, reader):
        await session.create_item(MessageItem(id="u1", role="user", text="Tell me."))
        generation = await session.generate_reply()
        first = await asyncio.wait_for(generation.messages.recv(), 10)
        await wait_audio(first, 300)
        received = first.audio_received_ms

        # Past the audio that exists (the ledger never asks this): sent as given, refused by
        # the server, retried at the server's own length.
        await session.truncate(first.item_id, received + 5000)
        await session.cancel_response()
        done = await asyncio.wait_for(generation.done, 10)
        assert (done.status, done.reason) == ("cancelled", "client_cancelled")
        await session.delete_item(first.item_id)

        sim = server.sessions[0]
        sent = [
            e
            for e in sim.client_events
            if e["type"].startswith(("conversation.item.t", "conversation.item.d", "response.c"))
        ]
        assert client_types(sent) == [
            "response.create",
            "conversation.item.truncate",
            "conversation.item.truncate",
            "response.cancel",
            "conversation.item.delete",
        ]
        assert sent[1]["audio_end_ms"] == math.floor(received + 5000)
        assert sent[2]["audio_end_ms"] <= math.floor(received)
        assert sent[4]["item_id"] == first.item_id
        await until(lambda: sim.conversation.get(first.item_id) is None)
        assert first.item_id not in session.mirror
        (rejected,) = reader.of_type(ProviderError)
        assert rejected.operation == "truncate" and rejected.kind is ErrorKind.INVALID


async def test_rejected_truncate_is_non_fatal() -> None:
    # The server measures audio in 250 ms steps: coarser than the 50 ms tail safety margin
    # the client applies, so a clamp to received audio can still overshoot.
    scenario = {
        "server": {"truncate_granularity_ms": 250},
        "responses": [
            {
                "say": "A reply whose audio the server measures coarsely.",
                "faults": [
                    {"kind": "stall", "seconds": 30, "after_audio_ms": {"item": 0, "ms": 330}}
                ],
            },
            {"say": "Still here."},
        ],
    }
    async with sim_session(scenario) as (server, session, reader):
        generation = await session.generate_reply()
        message = await asyncio.wait_for(generation.messages.recv(), 10)
        await wait_audio(message, 330)
        await session.cancel_response()
        await asyncio.wait_for(generation.done, 10)
        sim = server.sessions[0]
        item = sim.conversation.get(message.item_id)
        assert item is not None
        reported = sim.conversation.reported_audio_ms(item)
        heard = math.floor(message.audio_received_ms) - 1
        sent = min(heard, heard - heard % 50)
        # Deterministic scenario: the server's coarse length is under what we will send.
        assert sent > reported, (reported, message.audio_received_ms)
        await session.truncate(message.item_id, heard)
        error = await reader.wait_type(ProviderError)
        assert error.operation == "truncate" and not error.fatal
        # The session goes on.
        follow = await session.generate_reply()
        (p,) = await consume(follow)
        assert p.text == "Still here."


# --------------------------------------------------------------------------- connection


async def test_missing_key_is_a_fatal_connect_error() -> None:
    from vocalis.providers.openai.realtime import OpenAIRealtimeModel
    from vocalis.sim.server import SimServer

    async with SimServer(pace=0.0) as server:
        model = OpenAIRealtimeModel(base_url=server.url.removesuffix("/realtime"))
        with pytest.raises(OperationError) as info:
            await model.connect(SessionOptions())
        assert info.value.kind is ErrorKind.FATAL and info.value.code == "invalid_api_key"


async def test_azure_dialect_uses_api_key_header_and_g711() -> None:
    scenario = {"responses": [{"say": "Hello over the phone."}]}
    async with sim_session(scenario, dialect="azure", audio_format="g711_ulaw") as (
        server,
        session,
        _,
    ):
        assert session.capabilities.output_sample_rate == 8000
        await session.create_item(MessageItem(id="u1", role="user", text="Hi"))
        generation = await session.generate_reply()
        (p,) = await consume(generation)
        item = server.sessions[0].conversation.get(p.message.item_id)
        assert item is not None
        assert p.message.audio_received_ms == pytest.approx(item.audio_ms, abs=0.2)
        assert p.samples == round(p.message.audio_received_ms * 8)
        fmt = server.sessions[0].client_events[0]["session"]["audio"]["output"]["format"]
        assert fmt == {"type": "audio/pcmu"}


async def test_update_options_sends_only_changes_and_reports_rejection() -> None:
    scenario = {"responses": [{"say": "Voice is now locked."}]}
    options = SessionOptions(instructions="Old.", voice="marin", turn_detection=None)
    async with sim_session(scenario, options) as (server, session, _):
        generation = await session.generate_reply()
        await consume(generation)
        # Same voice, new instructions: only the change goes out, so the voice lock is not hit.
        await session.update_options(
            SessionOptions(instructions="New.", voice="marin", turn_detection=None)
        )
        sent = server.sessions[0].client_events
        updates = [e["session"] for e in sent if e["type"] == "session.update"]
        assert updates[-1] == {"type": "realtime", "instructions": "New."}
        # Changing the voice after audio was produced is refused; the session stays usable.
        with pytest.raises(OperationError) as info:
            await session.update_options(
                SessionOptions(instructions="New.", voice="cedar", turn_detection=None)
            )
        assert info.value.code == "cannot_update_voice"
        await session.create_item(MessageItem(id="u9", role="user", text="Still there?"))
        assert "u9" in session.mirror
        assert session.options.voice == "marin"  # the rejected options were not adopted
