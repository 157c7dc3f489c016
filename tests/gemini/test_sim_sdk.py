"""Google's own google-genai SDK against `vocalis sim-server --protocol gemini --tls`.

The SDK always connects with wss:// and writes the mixed spellings (camelCase setup,
snake_case realtime_input / tool_response, URL-safe base64): this proves the dialect takes
the wire exactly as the SDK sends it, and that every server message parses with the SDK's
types (strictly: `assert_strict` refuses fields the SDK does not know).
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from google import genai
from google.genai import types

from vocalis.sim.gemini import DIALECT, sessions_of
from vocalis.sim.server import SimServer
from vocalis.sim.tls import client_ssl_context, ensure_local_certificate

from .sim_support import assert_strict, caller_speech, with_audio

SCENARIO = {
    "responses": [
        {
            "user_transcript": "What is the weather in Paris?",
            "items": [
                {"say": "Let me check the weather for you."},
                {"call": "get_weather", "arguments": {"city": "Paris"}},
            ],
        },
        {
            "say": "It is {result[sky]} in Paris today, with a light wind from the west and "
            "a few clouds later in the afternoon, so a jacket would be a good idea."
        },
        {"user_transcript": "Thanks, bye.", "say": "Goodbye!"},
    ]
}
WEATHER_TOOL = types.Tool(
    function_declarations=[
        types.FunctionDeclaration(
            name="get_weather",
            description="Weather for a city.",
            parameters_json_schema={"type": "object", "properties": {"city": {"type": "string"}}},
        )
    ]
)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[SimServer]:
    cert = ensure_local_certificate(tmp_path / "tls")
    async with SimServer(scenario=SCENARIO, pace=1.0, tls=cert, dialects=[DIALECT]) as sim:
        yield sim


def _client(server: SimServer, context: ssl.SSLContext) -> genai.Client:
    return genai.Client(
        api_key="sim-key",
        http_options=types.HttpOptions(
            base_url=server.base_url, api_version="v1beta", async_client_args={"ssl": context}
        ),
    )


async def _stream(session: Any, samples: np.ndarray, *, realtime: bool = False) -> None:
    step = 16 * 40  # 40 ms frames at 16 kHz
    for start in range(0, len(samples), step):
        chunk = samples[start : start + step].astype("<i2").tobytes()
        await session.send_realtime_input(
            audio=types.Blob(data=chunk, mime_type="audio/pcm;rate=16000")
        )
        if realtime:
            await asyncio.sleep(0.04)


async def test_sdk_holds_a_spoken_turn_with_tool_call_and_barge_in(server: SimServer) -> None:
    assert server.tls is not None
    client = _client(server, client_ssl_context(server.tls))
    config = types.LiveConnectConfig(
        response_modalities=[types.Modality.AUDIO],
        tools=[WEATHER_TOOL],
        input_audio_transcription=types.AudioTranscriptionConfig(),
        output_audio_transcription=types.AudioTranscriptionConfig(),
        session_resumption=types.SessionResumptionConfig(),
    )
    received: list[types.LiveServerMessage] = []
    connect = client.aio.live.connect
    async with connect(model="gemini-live-2.5-flash-preview", config=config) as live:
        await _stream(live, caller_speech("What is the weather in Paris?"))
        call = None
        async for message in live.receive():
            received.append(message)
            if message.tool_call is not None:
                call = message.tool_call.function_calls[0]  # type: ignore[index]
                break
        assert call is not None and call.name == "get_weather" and call.args == {"city": "Paris"}
        output = {"output": {"sky": "sunny"}}
        await live.send_tool_response(
            function_responses=[types.FunctionResponse(id=call.id, name=call.name, response=output)]
        )
        audio_after = 0
        async for message in live.receive():
            received.append(message)
            content = message.server_content
            if content is not None and content.model_turn is not None:
                audio_after += 1
                if audio_after == 10:  # ~1 s into a real-time answer: the caller barges in
                    await _stream(live, caller_speech("Thanks, bye.", silence_after_ms=0))
            if content is not None and content.interrupted:
                break
    sims = sessions_of(server)
    conn = await sims.wait_for_connection(1)
    history = conn.session.history
    assert history.texts()[0] == ("user", "What is the weather in Paris?")
    answer = history.turns[3]
    assert answer.role == "model" and answer.interrupted
    assert answer.text.startswith("It is sunny in Paris today")
    assert not answer.text.endswith("good idea.")  # real time: only what was sent
    transcripts = [
        m.server_content.input_transcription.text
        for m in received
        if m.server_content is not None and m.server_content.input_transcription is not None
    ]
    assert transcripts == ["What is the weather in Paris?"]
    # The SDK spelled its messages its own way; the server read them all.
    spellings = {next(iter(m)) for m in conn.session.client_messages}
    assert {"setup", "realtime_input", "tool_response"} <= spellings
    for sent in conn.session.server_messages:
        assert_strict(json.dumps(with_audio(sent)))


async def test_constrained_path_and_ephemeral_token_header(server: SimServer) -> None:
    assert server.tls is not None
    client = genai.Client(
        api_key="auth_tokens/sim-ephemeral",
        http_options=types.HttpOptions(
            base_url=server.base_url,
            api_version="v1alpha",
            async_client_args={"ssl": client_ssl_context(server.tls)},
        ),
    )
    with pytest.warns(Warning):
        async with client.aio.live.connect(model="gemini-live-2.5-flash-preview") as live:
            await live.send_client_content(
                turns=types.Content(role="user", parts=[types.Part(text="Say exactly: Hi there.")])
            )
            async for message in live.receive():
                if message.server_content is not None and message.server_content.turn_complete:
                    break
    conn = await sessions_of(server).wait_for_connection(1)
    assert conn.session.constrained
    assert conn.session.history.texts()[-1] == ("model", "Hi there.")
