"""null in client events (decided field by field) and the two session types."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from websockets.asyncio.client import connect

from vocalis.audio.espeak import synthesize
from vocalis.sim import errors
from vocalis.sim.server import SimServer
from vocalis.sim.session_config import (
    REALTIME_SCHEMA,
    RESPONSE_SCHEMA,
    Nested,
    NullIsValue,
    SessionConfig,
    default_session,
    validate_response_params,
)

from .conftest import WEATHER_TOOL, Client, add_user_text, open_client


def _config() -> SessionConfig:
    return SessionConfig(default_session(session_id="sess_1", model="gpt-realtime", expires_at=1))


# Every optional field of response.create at null: the real API takes null as "not given"
# (LiveKit sends "instructions": null on every generate_reply and works against it).
RESPONSE_ALL_NULL = {
    key: None
    for key in (
        "conversation",
        "input",
        "instructions",
        "tools",
        "tool_choice",
        "output_modalities",
        "audio",
        "max_output_tokens",
        "metadata",
        "prompt",
        "reasoning",
        "parallel_tool_calls",
    )
}


def test_response_create_nulls_are_absent() -> None:
    assert validate_response_params(RESPONSE_ALL_NULL) == {}
    assert validate_response_params({"audio": {"output": {"voice": None, "format": None}}}) == {
        "audio": {"output": {}}
    }


def test_session_update_nulls_keep_or_switch_off_field_by_field() -> None:
    config = _config()
    before = json.loads(json.dumps(config.session))
    kept = (
        "instructions",
        "tools",
        "tool_choice",
        "output_modalities",
        "max_output_tokens",
        "truncation",
        "model",
        "reasoning",
        "parallel_tool_calls",
    )
    after = config.update({"type": "realtime", **dict.fromkeys(kept), "audio": None})
    assert after == before  # null = not given: nothing changed
    voice_null = {"output": {"voice": None, "speed": None, "format": None}}
    assert config.update({"type": "realtime", "audio": voice_null}) == before
    # Fields whose documented null is a value: it switches them off.
    config.update({"type": "realtime", "tracing": "auto", "include": None, "prompt": None})
    off = config.update(
        {
            "type": "realtime",
            "audio": {
                "input": {"turn_detection": None, "transcription": None, "noise_reduction": None}
            },
        }
    )
    assert off["audio"]["input"]["turn_detection"] is None
    # null inside an object: the default stays, except idle_timeout_ms (null is "off").
    td = {"type": "server_vad", "threshold": None, "idle_timeout_ms": None}
    on = config.update({"type": "realtime", "audio": {"input": {"turn_detection": td}}})
    assert on["audio"]["input"]["turn_detection"]["threshold"] == 0.5


@pytest.mark.parametrize(
    ("patch", "code", "param"),
    [
        ({"type": None}, "missing_required_parameter", "session.type"),
        ({"type": "realtime", "instructions": 5}, "invalid_type", "session.instructions"),
        ({"type": "realtime", "tool_choice": 5}, "invalid_type", "session.tool_choice"),
    ],
)
def test_required_nulls_and_wrong_types_are_still_errors(
    patch: dict[str, Any], code: str, param: str
) -> None:
    with pytest.raises(errors.RealtimeError) as error:
        _config().update(patch)
    assert (error.value.code, error.value.param) == (code, param)


async def test_livekit_style_reply_after_a_tool_call_is_answered() -> None:
    """The LiveKit flow of issue 18: generate_reply after a tool output sends null fields."""
    scenario = {"responses": [{"items": [{"call": "get_weather", "arguments": {"city": "Oslo"}}]}]}
    async with SimServer(scenario=scenario) as server, open_client(server) as client:
        await client.send("session.update", session={"type": "realtime", "tools": [WEATHER_TOOL]})
        await client.until("session.updated")
        await add_user_text(client, "Weather in Oslo?")
        await client.send("response.create", event_id=None, response=RESPONSE_ALL_NULL)
        done = await client.until("response.done")
        call = done["response"]["output"][0]
        await client.send(
            "conversation.item.create",
            previous_item_id=None,
            item={
                "id": None,
                "type": "function_call_output",
                "call_id": call["call_id"],
                "output": '{"sky": "grey"}',
                "status": None,
            },
        )
        await client.until("conversation.item.done")
        await client.send("response.create", response={"instructions": None, "tool_choice": None})
        done = await client.until("response.done")
        assert done["response"]["status"] == "completed"
        assert not client.of_type("error")


async def test_a_session_type_switch_is_refused_like_the_real_api() -> None:
    async with SimServer() as server, open_client(server) as client:
        await client.send("session.update", session={"type": "transcription"})
        error = await client.until("error")
        assert error["error"]["code"] == "invalid_parameter"
        assert error["error"]["message"] == (
            "Passing a transcription session update event to a realtime session is not allowed."
        )
        assert server.sessions[0].config.session["type"] == "realtime"


def _speech_frames() -> list[str]:
    speech = synthesize("Please transcribe this sentence.", sample_rate=24000).samples
    silence = bytes(24000 * 2)  # one second
    pcm = speech.tobytes() + silence
    step = 24000 * 2 // 10  # 100 ms
    return [base64.b64encode(pcm[i : i + step]).decode() for i in range(0, len(pcm), step)]


async def test_transcription_session_by_intent() -> None:
    scenario = {"responses": [{"user_transcript": "Please transcribe this sentence."}]}
    async with SimServer(scenario=scenario) as server:
        url = server.url + "?intent=transcription"
        async with connect(url, additional_headers={"Authorization": "Bearer x"}) as ws:
            client = Client(ws)
            created = await client.until("session.created")
            assert created["session"]["type"] == "transcription"
            assert created["session"]["object"] == "realtime.transcription_session"
            transcription = {"model": "gpt-4o-transcribe", "language": None}
            await client.send(
                "session.update",
                session={
                    "type": "transcription",
                    "audio": {"input": {"transcription": transcription}},
                },
            )
            await client.until("session.updated")
            await client.send("session.update", session={"type": "realtime"})
            refused = await client.until("error")
            assert refused["error"]["message"] == (
                "Passing a realtime session update event to a transcription session is not allowed."
            )
            await client.send("response.create")
            assert (await client.until("error"))["error"]["param"] == "type"
            for frame in _speech_frames():
                await client.send("input_audio_buffer.append", audio=frame)
            done = await client.until("conversation.item.input_audio_transcription.completed")
            assert done["transcript"] == "Please transcribe this sentence."
        types = server.sessions[0].server_types()
        assert "input_audio_buffer.committed" in types
        assert "conversation.created" not in types  # a transcription session has no conversation
        assert not [t for t in types if t.startswith(("response.", "conversation.item.added"))]


def _null_is_absent_fields(schema: Nested, prefix: str = "") -> list[str]:
    """Every optional field of a schema whose null means "not given" (walked, not listed)."""
    found: list[str] = []
    for key, spec in schema.fields.items():
        if key in schema.required or isinstance(spec, NullIsValue):
            continue
        found.append(prefix + key)
        if isinstance(spec, Nested):
            found += _null_is_absent_fields(spec, f"{prefix}{key}.")
    return found


def _nest(path: str, value: Any) -> dict[str, Any]:
    head, _, rest = path.partition(".")
    return {head: _nest(rest, value) if rest else value}


@pytest.mark.parametrize("path", _null_is_absent_fields(REALTIME_SCHEMA))
def test_every_null_means_not_given_field_leaves_the_session_unchanged(path: str) -> None:
    config = _config()
    before = json.loads(json.dumps(config.session))
    assert config.update({"type": "realtime", **_nest(path, None)}) == before


@pytest.mark.parametrize("path", _null_is_absent_fields(RESPONSE_SCHEMA))
def test_every_response_field_at_null_is_the_same_as_absent(path: str) -> None:
    params = validate_response_params(_nest(path, None))
    assert all(value in ({}, {"output": {}}) for value in params.values())
