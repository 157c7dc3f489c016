"""The official ``openai`` SDK against the sim: every server event parses with the SDK's own types.

A scripted conversation driven through ``AsyncOpenAI().realtime.connect``: a spoken turn (server
VAD, input transcription), a two-message response with a tool call, a barge-in that cancels the
next answer (then a truncate), a retrieve, a delete, an out-of-band text response and a few
errors. Every frame the server sent is validated with pydantic against the SDK's
``RealtimeServerEvent`` union, and must carry no field the SDK does not know. It runs at real
time and at full speed (client bugs hide at one pace and not the other), and once over
``wss://`` against a ``vocalis sim-server --tls`` process (issue 21).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import ssl
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import openai
import pytest
from openai.types.realtime import RealtimeServerEvent, RealtimeSessionCreateRequestParam
from openai.types.websocket_connection_options import WebSocketConnectionOptions
from pydantic import BaseModel, TypeAdapter

from vocalis.audio.espeak import synthesize
from vocalis.sim.server import SimServer

from .conftest import WEATHER_TOOL

REPO = Path(__file__).resolve().parents[2]
SERVER_EVENT: TypeAdapter[Any] = TypeAdapter(RealtimeServerEvent)
# The server-only fields of a session object: the SDK types session.created/updated with the
# *request* model, which lacks them, while its RealtimeSessionCreateResponse declares them.
SERVER_ONLY = {
    f"session.{event}.session.{key}"
    for event in ("created", "updated")
    for key in ("id", "object", "expires_at")
}
QUESTION = "What is the weather in Paris?"
SCENARIO: dict[str, Any] = {
    "responses": [
        {
            "user_transcript": QUESTION,
            "items": [
                {"say": "Let me check."},
                {"call": "get_weather", "arguments": {"city": "Paris"}},
            ],
        },
        {
            "items": [{"say": "It is sunny in Paris today, with a light breeze from the west."}],
            # Held after its first audio until the caller barges in (any pace).
            "faults": [
                {"kind": "stall", "seconds": 30, "after_event": "response.output_audio.delta"}
            ],
        },
        {"user_transcript": "Thanks, that is all.", "say": "You are welcome."},
    ]
}


def _frames(text: str) -> list[str]:
    speech = synthesize(text, sample_rate=24000).samples.tobytes()
    pcm = speech + bytes(24000 * 2)  # one second of silence ends the turn
    step = 24000 * 2 // 10
    return [base64.b64encode(pcm[i : i + step]).decode() for i in range(0, len(pcm), step)]


def _unknown_fields(model: Any, path: str) -> list[str]:
    """Fields the server sent that the SDK's model does not declare (recursively)."""
    found: list[str] = []
    if isinstance(model, BaseModel):
        found += [f"{path}.{key}" for key in (model.model_extra or {})]
        for name in type(model).model_fields:
            found += _unknown_fields(getattr(model, name), f"{path}.{name}")
    elif isinstance(model, list):
        for index, entry in enumerate(model):
            found += _unknown_fields(entry, f"{path}[{index}]")
    return found


class Recorder:
    """Reads the SDK connection, keeping every raw server event."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.events: list[dict[str, Any]] = []
        self.audio_ms: dict[str, float] = {}

    async def nth(self, event_type: str, n: int) -> dict[str, Any]:
        """The n-th event of a type (1-based), reading on until it has arrived."""
        while True:
            seen = [e for e in self.events if e["type"] == event_type]
            if len(seen) >= n:
                return seen[n - 1]
            await self.until(event_type)

    async def until(self, event_type: str) -> dict[str, Any]:
        while True:
            event: dict[str, Any] = json.loads(await self.connection.recv_bytes())
            self.events.append(event)
            if event["type"] == "response.output_audio.delta":
                item = event["item_id"]
                delta_ms = len(base64.b64decode(event["delta"])) / 48
                self.audio_ms[item] = self.audio_ms.get(item, 0.0) + delta_ms
            if event["type"] == event_type:
                return event


async def _speak(connection: Any, text: str) -> None:
    for frame in _frames(text):
        await connection.input_audio_buffer.append(audio=frame)


async def _conversation(connection: Any) -> Recorder:
    rec = Recorder(connection)
    await rec.until("session.created")
    session: RealtimeSessionCreateRequestParam = {
        "type": "realtime",
        "tools": [WEATHER_TOOL],
        "instructions": "Be brief.",
        "audio": {"input": {"transcription": {"model": "gpt-4o-mini-transcribe"}}},
    }
    await connection.session.update(session=session)
    await rec.until("session.updated")
    # A spoken turn answered by a preamble and a tool call.
    await _speak(connection, QUESTION)
    first = await rec.nth("response.done", 1)
    call = first["response"]["output"][1]
    assert call["type"] == "function_call" and call["name"] == "get_weather"
    output = {"type": "function_call_output", "call_id": call["call_id"], "output": '{"sky":1}'}
    await connection.conversation.item.create(item=output)
    await connection.response.create()
    # The answer starts playing, then the caller barges in.
    delta = await rec.until("response.output_audio.delta")
    await _speak(connection, "Thanks, that is all.")
    cut = await rec.nth("response.done", 2)
    assert cut["response"]["status_details"]["reason"] == "turn_detected"
    heard = int(min(rec.audio_ms[delta["item_id"]], 300))
    await connection.conversation.item.truncate(
        item_id=delta["item_id"], content_index=0, audio_end_ms=heard
    )
    await rec.until("conversation.item.truncated")
    await rec.nth("response.done", 3)  # the caller's new turn is answered
    await connection.conversation.item.retrieve(item_id=delta["item_id"])
    await rec.until("conversation.item.retrieved")
    await connection.conversation.item.delete(item_id=delta["item_id"])
    await rec.until("conversation.item.deleted")
    await connection.response.create(
        response={"conversation": "none", "output_modalities": ["text"], "instructions": "Hi"}
    )
    await rec.nth("response.done", 4)
    await connection.input_audio_buffer.clear()
    await rec.until("input_audio_buffer.cleared")
    await connection.input_audio_buffer.commit()  # empty: an error
    await rec.until("error")
    return rec


def _check(events: list[dict[str, Any]]) -> set[str]:
    unknown: list[str] = []
    for event in events:
        parsed = SERVER_EVENT.validate_python(event)
        assert parsed.type == event["type"]
        unknown += [f for f in _unknown_fields(parsed, event["type"]) if f not in SERVER_ONLY]
    assert unknown == [], f"fields the SDK does not know: {sorted(set(unknown))}"
    return {event["type"] for event in events}


EXPECTED_TYPES = {
    "session.created",
    "conversation.created",
    "session.updated",
    "input_audio_buffer.speech_started",
    "input_audio_buffer.speech_stopped",
    "input_audio_buffer.committed",
    "conversation.item.added",
    "conversation.item.done",
    "conversation.item.input_audio_transcription.delta",
    "conversation.item.input_audio_transcription.completed",
    "response.created",
    "rate_limits.updated",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_audio_transcript.delta",
    "response.output_audio.delta",
    "response.output_audio.done",
    "response.output_audio_transcript.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.function_call_arguments.delta",
    "response.function_call_arguments.done",
    "response.output_text.delta",
    "response.output_text.done",
    "response.done",
    "conversation.item.truncated",
    "conversation.item.retrieved",
    "conversation.item.deleted",
    "input_audio_buffer.cleared",
    "error",
}


@pytest.mark.parametrize("pace", [1.0, 0.0], ids=["real-time", "fast"])
async def test_every_server_event_parses_with_the_sdk_types(pace: float) -> None:
    async with SimServer(scenario=SCENARIO, pace=pace) as server:
        client = openai.AsyncOpenAI(api_key="sk-test", base_url=server.base_url + "/v1")
        async with client.realtime.connect(model="gpt-realtime") as connection:
            rec = await _conversation(connection)
    assert _check(rec.events) >= EXPECTED_TYPES
    assert len(rec.events) > 100


@contextlib.asynccontextmanager
async def _tls_sim_process(tmp: Path, scenario: Path) -> AsyncIterator[tuple[str, Path]]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "XDG_CACHE_HOME": str(tmp)}
    args = ["sim-server", "--port", "0", "--tls", "--pace", "4", "--scenario", str(scenario)]
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "vocalis.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        cwd=REPO,
        env=env,
    )
    try:
        assert process.stdout is not None
        url = (await process.stdout.readline()).decode().strip()
        yield url, tmp / "vocalis" / "tls" / "localhost-cert.pem"
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 20)


async def test_openai_sdk_over_wss_against_sim_server_tls(tmp_path: Path) -> None:
    scenario = tmp_path / "scenario.json"
    scenario.write_text(json.dumps(SCENARIO))
    async with _tls_sim_process(tmp_path, scenario) as (url, cert):
        assert url.startswith("wss://127.0.0.1:")
        https = "https://" + url.removeprefix("wss://").split("/v1/")[0] + "/v1"
        context = ssl.create_default_context(cafile=str(cert))
        client = openai.AsyncOpenAI(api_key="sk-test", base_url=https)
        # The SDK hands these to websockets.connect, which takes `ssl`; its type omits it.
        options: WebSocketConnectionOptions = {"ssl": context}  # type: ignore[typeddict-unknown-key]
        async with client.realtime.connect(
            model="gpt-realtime", websocket_connection_options=options
        ) as connection:
            rec = await _conversation(connection)
    types = _check(rec.events)
    assert {"response.function_call_arguments.done", "conversation.item.truncated"} <= types
