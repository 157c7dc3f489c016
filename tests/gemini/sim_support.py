"""Helpers for driving the Gemini sim core directly (no sockets): a caller that speaks real
espeak audio at 16 kHz, frame builders in both spellings, and SDK validation of every frame."""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np
from google.genai import types

from vocalis.audio.espeak import synthesize
from vocalis.sim.gemini import GeminiSims
from vocalis.sim.gemini.session import Close, GeminiSimSession, Outgoing, Send

CHUNK_MS = 40

# The weather conversation most Gemini tests script: a preamble + get_weather call, the
# answer from the tool output, then a long answer to a second question.
WEATHER_RESPONSES: list[dict[str, Any]] = [
    {
        "user_transcript": "What is the weather in Paris?",
        "items": [
            {"say": "Let me check the weather for you."},
            {"call": "get_weather", "arguments": {"city": "Paris"}},
        ],
    },
    {"say": "It is {result[sky]} in Paris right now."},
    {
        "user_transcript": "And tomorrow?",
        "say": "Tomorrow will be cloudy in the morning and sunny in the afternoon, "
        "with a light breeze from the west and no rain at all.",
    },
]


def caller_speech(text: str, *, silence_after_ms: int = 900) -> np.ndarray:
    """``text`` spoken at 16 kHz, followed by silence long enough to end the turn."""
    clip = synthesize(text, sample_rate=16000)
    tail = np.zeros(16 * silence_after_ms, dtype=np.int16)
    return np.concatenate([np.asarray(clip.samples, dtype=np.int16), tail])


def silence(ms: int) -> np.ndarray:
    return np.zeros(16 * ms, dtype=np.int16)


def audio_frame(samples: np.ndarray, *, sdk_spelling: bool = True, rate: int = 16000) -> str:
    """One realtime audio frame the way the SDK writes it (snake_case, URL-safe base64) or
    the camelCase/standard-base64 way a hand-written client does."""
    raw = samples.astype("<i2").tobytes()
    if sdk_spelling:
        data = base64.urlsafe_b64encode(raw).decode()
        return json.dumps(
            {"realtime_input": {"audio": {"data": data, "mime_type": f"audio/pcm;rate={rate}"}}}
        )
    data = base64.b64encode(raw).decode()
    return json.dumps(
        {"realtimeInput": {"audio": {"data": data, "mimeType": f"audio/pcm;rate={rate}"}}}
    )


def setup_frame(**setup: Any) -> str:
    body: dict[str, Any] = {
        "model": "models/gemini-2.5-flash-native-audio-preview-09-2025",
        "generationConfig": {"responseModalities": ["AUDIO"]},
        "inputAudioTranscription": {},
        "outputAudioTranscription": {},
    }
    body.update(setup)
    return json.dumps({"setup": body})


def sent(outgoing: list[Outgoing]) -> list[dict[str, Any]]:
    """The JSON messages among ``outgoing``, each validated strictly by the SDK's type."""
    messages = []
    for out in outgoing:
        if isinstance(out, Send):
            assert_strict(out.text)
            messages.append(json.loads(out.text))
    return messages


def assert_strict(frame: str) -> None:
    """The frame is a ``LiveServerMessage`` with no field the SDK does not know."""
    parsed = types.LiveServerMessage.model_validate_json(frame)
    dumped = parsed.model_dump(mode="json", by_alias=True, exclude_none=True)
    original = json.loads(frame)
    assert _keys(dumped) == _keys(original), f"fields lost in SDK parse: {frame[:200]}"


def assert_client_strict(frame: str) -> None:
    """The frame is a ``LiveClientMessage`` (the SDK's types forbid unknown fields).

    The one exception is the SDK's own: it sends ``setup.realtimeInputConfig`` (from its
    ``LiveConnectConfig``) but its ``LiveClientSetup`` type lacks the field, so that part is
    checked with its own type, ``RealtimeInputConfig``.
    """
    message = json.loads(frame, parse_constant=_not_json)  # NaN, Infinity: not JSON (RFC 8259)
    setup = message.get("setup")
    if isinstance(setup, dict) and "realtimeInputConfig" in setup:
        setup = dict(setup)
        types.RealtimeInputConfig.model_validate_json(json.dumps(setup.pop("realtimeInputConfig")))
        message = {**message, "setup": setup}
    types.LiveClientMessage.model_validate_json(json.dumps(message))


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON: the service refuses the message")


def with_audio(message: Any) -> Any:
    """A recorded message (audio replaced by its byte count) with silent base64 audio of that
    length back in place, so it can be validated as the message that was on the wire."""
    if isinstance(message, list):
        return [with_audio(value) for value in message]
    if not isinstance(message, dict):
        return message
    out = {key: with_audio(value) for key, value in message.items()}
    if isinstance(out.get("data"), int) and ("mimeType" in out or "mime_type" in out):
        out["data"] = base64.b64encode(bytes(out["data"])).decode()
    return out


def assert_wire_valid(sims: GeminiSims) -> int:
    """Every message each sim connection took and sent, validated by the SDK's types: what
    the client wrote as ``LiveClientMessage``, what the sim answered as ``LiveServerMessage``
    (no field lost). Returns how many were checked (a check of nothing must not pass)."""
    checked = 0
    for conn in sims.connections:
        for message in conn.session.client_messages:
            assert_client_strict(json.dumps(with_audio(message)))
            checked += 1
        for message in conn.session.server_messages:
            assert_strict(json.dumps(with_audio(message)))
            checked += 1
    return checked


def _keys(value: Any, prefix: str = "") -> set[str]:
    if isinstance(value, dict):
        out = set()
        for key, inner in value.items():
            out.add(prefix + key)
            out |= _keys(inner, prefix + key + ".")
        return out
    if isinstance(value, list):
        return set().union(*(_keys(v, prefix) for v in value)) if value else set()
    return set()


def kinds(messages: list[dict[str, Any]]) -> list[str]:
    """A readable kind per message: ``setupComplete``, ``audio``, ``outputTranscription``..."""
    out = []
    for message in messages:
        ((key, body),) = message.items()
        if key == "serverContent":
            inner = next(iter(body))
            out.append(
                "audio"
                if inner == "modelTurn" and "inlineData" in body[inner]["parts"][0]
                else inner
            )
        else:
            out.append(key)
    return out


def feed(
    session: GeminiSimSession, samples: np.ndarray, now: float, **kw: Any
) -> tuple[list[dict[str, Any]], float]:
    """Send ``samples`` in 40 ms frames (time advancing with the audio); all replies."""
    messages: list[dict[str, Any]] = []
    step = 16 * CHUNK_MS
    for start in range(0, len(samples), step):
        messages += sent(session.receive(audio_frame(samples[start : start + step], **kw), now))
        now += CHUNK_MS / 1000.0
        messages += sent(session.poll(now))
    return messages, now


def run_until_idle(
    session: GeminiSimSession, now: float, limit_s: float = 120.0
) -> tuple[list[dict[str, Any]], float]:
    """Poll at each deadline until nothing is scheduled (or the limit)."""
    messages: list[dict[str, Any]] = []
    end = now + limit_s
    while (deadline := session.next_deadline()) is not None and deadline <= end:
        now = max(now, deadline)
        messages += sent(session.poll(now))
    return messages, now


def closed_with(outgoing: list[Outgoing]) -> Close | None:
    return next((o for o in outgoing if isinstance(o, Close)), None)
