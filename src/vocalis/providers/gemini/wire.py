"""Gemini Live client messages, built from the neutral types (camelCase, standard base64).

Pure functions, no state: ``setup`` from `SessionOptions`, realtime audio and activity
frames, ``clientContent`` turns from history items (how a fresh session is seeded with the
heard history), ``toolResponse``. The per-frame audio message is formatted from a template
(no JSON encoder per 20 ms frame). Server messages are read with :func:`get`, which accepts
camelCase and snake_case names (the service writes camelCase; proxies may not), and their
audio with :func:`decode_audio`.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from vocalis.audio.codec import b64decode_bytes, b64encode_pcm16
from vocalis.conversation.items import (
    ConversationItem,
    FunctionCallItem,
    FunctionCallOutputItem,
    MessageItem,
)
from vocalis.providers.base import SessionOptions, ToolSpec

INPUT_RATE = 16000
OUTPUT_RATE = 24000
_AUDIO_FRAME = '{"realtimeInput":{"audio":{"data":"%s","mimeType":"audio/pcm;rate=16000"}}}'
ACTIVITY_START = '{"realtimeInput":{"activityStart":{}}}'
ACTIVITY_END = '{"realtimeInput":{"activityEnd":{}}}'
AUDIO_STREAM_END = '{"realtimeInput":{"audioStreamEnd":true}}'
_URLSAFE = str.maketrans("-_", "+/")


@functools.cache
def snake_case(camel: str) -> str:
    """``"turnComplete"`` -> ``"turn_complete"``; cached: the names are this module's
    callers' literals (a fixed vocabulary, never the peer's keys), and spelling one out per
    call was two thirds of the receive core's CPU (most fields are absent from a message)."""
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in camel)


def get(obj: dict[str, Any], camel: str) -> Any:
    """``obj[camel]``, else the snake_case spelling of the same field."""
    value = obj.get(camel)
    if value is None:
        value = obj.get(snake_case(camel))
    return value


def decode_audio(data: object) -> np.ndarray:
    """A server ``inlineData.data`` payload as int16 samples (raises ValueError if not text).

    Accepts URL-safe base64 and missing padding (proxies re-encode); a trailing odd byte is
    dropped rather than failing the whole chunk.
    """
    if not isinstance(data, str):
        raise ValueError("inlineData.data is not base64 text")
    # The service writes standard base64: two scans for the URL-safe letters cost far less
    # than rewriting every chunk (a quarter of the receive core's CPU).
    text = data.translate(_URLSAFE) if "-" in data or "_" in data else data
    raw = b64decode_bytes(text + "=" * (-len(text) % 4))
    usable = len(raw) - len(raw) % 2
    return np.frombuffer(raw[:usable], dtype="<i2").astype(np.int16, copy=False)


def dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"))


def audio_frame(samples: np.ndarray) -> str:
    """One ``realtimeInput.audio`` frame of int16 mono 16 kHz samples (hot path)."""
    return _AUDIO_FRAME % b64encode_pcm16(samples)


def _tool(spec: ToolSpec) -> dict[str, Any]:
    declaration: dict[str, Any] = {"name": spec.name, "description": spec.description}
    if spec.parameters.get("properties"):
        declaration["parametersJsonSchema"] = spec.parameters
    return declaration


def setup_message(
    model: str,
    options: SessionOptions,
    *,
    resume_handle: str | None,
    vertex_model_path: str | None = None,
) -> dict[str, Any]:
    """The ``setup`` message for ``options`` (sent first on every connection).

    ``turn_detection=None`` selects manual activity (``activityStart``/``activityEnd``);
    session resumption is always requested, so a dropped connection can be resumed.
    """
    generation: dict[str, Any] = {
        "responseModalities": ["AUDIO" if "audio" in options.output_modalities else "TEXT"],
    }
    if options.voice:
        generation["speechConfig"] = {
            "voiceConfig": {"prebuiltVoiceConfig": {"voiceName": options.voice}}
        }
    if isinstance(options.max_output_tokens, int):
        generation["maxOutputTokens"] = options.max_output_tokens
    setup: dict[str, Any] = {
        "model": vertex_model_path or (model if model.startswith("models/") else f"models/{model}"),
        "generationConfig": generation,
        "realtimeInputConfig": _realtime_input_config(options),
        "inputAudioTranscription": {},
        "sessionResumption": {"handle": resume_handle} if resume_handle else {},
        "contextWindowCompression": {"slidingWindow": {}},
    }
    if "audio" in options.output_modalities:
        setup["outputAudioTranscription"] = {}
    if options.instructions:
        setup["systemInstruction"] = {"parts": [{"text": options.instructions}]}
    if options.tools:
        setup["tools"] = [{"functionDeclarations": [_tool(t) for t in options.tools]}]
    return {"setup": setup}


def _realtime_input_config(options: SessionOptions) -> dict[str, Any]:
    td = options.turn_detection
    if td is None:
        return {"automaticActivityDetection": {"disabled": True}}
    auto: dict[str, Any] = {"disabled": False}
    if td.silence_duration_ms is not None:
        auto["silenceDurationMs"] = td.silence_duration_ms
    if td.prefix_padding_ms is not None:
        auto["prefixPaddingMs"] = td.prefix_padding_ms
    handling = "START_OF_ACTIVITY_INTERRUPTS" if td.interrupt_response else "NO_INTERRUPTION"
    return {"automaticActivityDetection": auto, "activityHandling": handling}


def _refuse(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is beyond a double")
    return value


def _json_value(text: str) -> Any:
    """``text`` parsed as strict JSON (raises ValueError otherwise).

    Strict because whatever is parsed is written back into a message: ``json`` reads
    ``NaN``, ``Infinity`` and ``1e400`` and writes them as bare ``NaN``/``Infinity`` tokens,
    which are not JSON — the service refuses the whole message (a tool output of ``"NaN"``
    lost the call's tool response, or the whole seeded history of a re-seed). Text that is
    not JSON goes as text.
    """
    try:
        return json.loads(text, parse_constant=_refuse, parse_float=_finite)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _turn_of(item: ConversationItem) -> dict[str, Any] | None:
    """One history item as a Content turn (text only: a new session cannot take our audio)."""
    if isinstance(item, MessageItem):
        if not item.text.strip() or item.role == "system":
            return None
        role = "model" if item.role == "assistant" else "user"
        return {"role": role, "parts": [{"text": item.text}]}
    if isinstance(item, FunctionCallItem):
        try:
            args = _json_value(item.arguments or "{}")
        except ValueError:
            args = {"raw": item.arguments}
        call = {
            "id": item.call_id,
            "name": item.name,
            "args": args if isinstance(args, dict) else {"value": args},
        }
        return {"role": "model", "parts": [{"functionCall": call}]}
    if isinstance(item, FunctionCallOutputItem):
        result = {
            "id": item.call_id,
            "name": item.name,
            "response": tool_response_body(item.output),
        }
        return {"role": "user", "parts": [{"functionResponse": result}]}
    return None


def history_turns(items: Sequence[ConversationItem]) -> list[dict[str, Any]]:
    """The heard history as ``clientContent`` turns, consecutive same-role turns merged.

    Calls without an output and outputs without their call are left out (the model refuses
    an unanswered function call in seeded history).
    """
    calls = {i.call_id for i in items if isinstance(i, FunctionCallItem)}
    outputs = {i.call_id for i in items if isinstance(i, FunctionCallOutputItem)}
    turns: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, FunctionCallItem) and item.call_id not in outputs:
            continue
        if isinstance(item, FunctionCallOutputItem) and item.call_id not in calls:
            continue
        turn = _turn_of(item)
        if turn is None:
            continue
        if turns and turns[-1]["role"] == turn["role"]:
            turns[-1]["parts"].extend(turn["parts"])
        else:
            turns.append(turn)
    return turns


def client_content(turns: list[dict[str, Any]], *, turn_complete: bool) -> dict[str, Any]:
    return {"clientContent": {"turns": turns, "turnComplete": turn_complete}}


def tool_response_body(output: str) -> dict[str, Any]:
    """A tool output string as a FunctionResponse ``response`` object (JSON kept as JSON)."""
    try:
        value = _json_value(output)
    except ValueError:
        value = output
    return {"output": value}


def tool_response(call_id: str, name: str, output: str) -> dict[str, Any]:
    response = {"id": call_id, "name": name, "response": tool_response_body(output)}
    return {"toolResponse": {"functionResponses": [response]}}


def duration_s(text: object) -> float | None:
    """A protobuf Duration in JSON (``"12.5s"``) as seconds."""
    if isinstance(text, str) and text.endswith("s"):
        try:
            return float(text[:-1])
        except ValueError:
            return None
    return None
