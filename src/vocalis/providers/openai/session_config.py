"""`SessionOptions` → the `session` object of a `session.update` event, per dialect.

Why separate: the GA session shape (nested `audio.input/output`, required `type`) is easy to get
subtly wrong (beta keys such as `modalities` or top-level `voice` are rejected by GA with
`unknown_parameter`), and xAI speaks the same events with a *flat* session. Keeping the mapping
pure makes each dialect's exact payload unit-testable.
"""

from __future__ import annotations

import logging
from typing import Any, Literal, TypeAlias

from vocalis.providers.base import SessionOptions, ToolSpec, TurnDetection
from vocalis.providers.openai.formats import AudioFormat

Dialect: TypeAlias = Literal["openai", "azure", "xai"]

logger = logging.getLogger(__name__)


def tool_to_wire(tool: ToolSpec) -> dict[str, Any]:
    return {
        "type": "function",
        "name": tool.name,
        "description": tool.description,
        "parameters": tool.parameters,
    }


def tool_choice_to_wire(choice: str) -> str | dict[str, Any]:
    """`auto`/`none`/`required` pass through; any other string names a function to force."""
    if choice in ("auto", "none", "required"):
        return choice
    return {"type": "function", "name": choice}


def turn_detection_to_wire(td: TurnDetection | None) -> dict[str, Any] | None:
    if td is None:
        return None
    wire: dict[str, Any] = {
        "type": td.type,
        "create_response": td.create_response,
        "interrupt_response": td.interrupt_response,
    }
    if td.type == "semantic_vad":
        if td.eagerness is not None:
            wire["eagerness"] = td.eagerness
        return wire
    for key in ("threshold", "prefix_padding_ms", "silence_duration_ms", "idle_timeout_ms"):
        value = getattr(td, key)
        if value is not None:
            wire[key] = value
    return wire


def output_modalities(options: SessionOptions) -> list[str]:
    """GA accepts exactly one of `["audio"]` / `["text"]`; audio always carries a transcript."""
    return ["audio"] if "audio" in options.output_modalities else ["text"]


def build_session(
    options: SessionOptions, *, dialect: Dialect, audio_format: AudioFormat
) -> dict[str, Any]:
    """The full `session` object for `session.update` (sent on connect and every reconnect)."""
    if dialect == "xai":
        return _build_xai(options, audio_format)
    session: dict[str, Any] = {"type": "realtime", "output_modalities": output_modalities(options)}
    if options.instructions is not None:
        session["instructions"] = options.instructions
    audio_in: dict[str, Any] = {
        "format": audio_format.wire_dict(),
        "turn_detection": turn_detection_to_wire(options.turn_detection),
    }
    if options.input_transcription_model is not None:
        transcription: dict[str, Any] = {"model": options.input_transcription_model}
        if options.input_transcription_language is not None:
            transcription["language"] = options.input_transcription_language
        audio_in["transcription"] = transcription
    audio_out: dict[str, Any] = {"format": audio_format.wire_dict()}
    if options.voice is not None:
        audio_out["voice"] = options.voice
    if options.speed is not None:
        audio_out["speed"] = options.speed
    session["audio"] = {"input": audio_in, "output": audio_out}
    # Only reasoning models accept `reasoning`; sending it unasked would break gpt-realtime.
    if options.reasoning_effort is not None:
        session["reasoning"] = {"effort": options.reasoning_effort}
    session["tools"] = [tool_to_wire(t) for t in options.tools]
    if options.tool_choice is not None:
        session["tool_choice"] = tool_choice_to_wire(options.tool_choice)
    if options.max_output_tokens is not None:
        session["max_output_tokens"] = options.max_output_tokens
    return session


def _build_xai(options: SessionOptions, audio_format: AudioFormat) -> dict[str, Any]:
    """xAI Grok voice: GA event names, flat session (top-level voice/turn_detection)."""
    session: dict[str, Any] = {}
    if options.instructions is not None:
        session["instructions"] = options.instructions
    if options.voice is not None:
        session["voice"] = options.voice
    td = options.turn_detection
    if td is not None and td.type != "server_vad":
        logger.warning("xAI supports only server_vad turn detection; using server_vad")
        td = TurnDetection(
            type="server_vad",
            create_response=td.create_response,
            interrupt_response=td.interrupt_response,
        )
    session["turn_detection"] = turn_detection_to_wire(td)
    session["audio"] = {
        "input": {"format": audio_format.wire_dict()},
        "output": {"format": audio_format.wire_dict()},
    }
    if options.reasoning_effort is not None:
        # xAI knows only "high" and "none".
        effort = "high" if options.reasoning_effort in ("medium", "high", "xhigh") else "none"
        session["reasoning"] = {"effort": effort}
    session["tools"] = [tool_to_wire(t) for t in options.tools]
    if options.tool_choice is not None:
        session["tool_choice"] = tool_choice_to_wire(options.tool_choice)
    return session


_NESTED_KEYS = frozenset({"audio", "input", "output"})


def session_diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The partial `session` that turns `old` into `new` (GA merges `audio.*` key by key).

    Keeps `type` (GA requires it on every update). Unchanged fields are left out, which
    matters for fields the server locks after use (voice once audio was produced).
    """
    out: dict[str, Any] = {}
    for key, value in new.items():
        before = old.get(key)
        if key in _NESTED_KEYS and isinstance(value, dict) and isinstance(before, dict):
            nested = session_diff(before, value)
            if nested:
                out[key] = nested
        elif key not in old or before != value:
            out[key] = value
    if "type" in new:
        out["type"] = new["type"]
    return out
