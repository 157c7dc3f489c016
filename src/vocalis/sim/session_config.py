"""The GA session object: defaults, validation of ``session.update``, atomic application.

A client sends a *partial* session; nested objects ``audio``, ``audio.input`` and
``audio.output`` merge key by key, every other field replaces (turn detection, formats and
transcription objects are normalised with their defaults filled in). The update is validated
against a copy and applied only when every field passed, so a rejected update changes nothing,
as observed on the real API. Beta-era keys (``modalities``, ``voice`` at top level, ...) are
simply unknown keys in the GA shape, and get ``unknown_parameter``.

The same field validators check the per-response overrides of ``response.create``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vocalis.sim import errors

VOICES = ("alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar")
AUDIO_FORMAT_TYPES = ("audio/pcm", "audio/pcmu", "audio/pcma")
PCM_RATE = 24000
SESSION_TYPES = ("realtime", "transcription")
DEFAULT_INSTRUCTIONS = (
    "You are vocalis' local simulated realtime model. Answer briefly and speak clearly."
)

Validator = Callable[[str, Any, Any], Any]
"""(param path, new value, current value) -> normalised value; raises RealtimeError."""


# --- leaf validators ---------------------------------------------------------------------------


def _string(param: str, value: Any, _current: Any) -> str:
    if not isinstance(value, str):
        raise errors.invalid_type(param, "a string", value)
    return value


def _boolean(param: str, value: Any, _current: Any) -> bool:
    if not isinstance(value, bool):
        raise errors.invalid_type(param, "a boolean", value)
    return value


def _in_range(param: str, value: float, lo: float | None, hi: float | None) -> None:
    if lo is not None and value < lo:
        raise errors.out_of_range(param, value, lo, below=True)
    if hi is not None and value > hi:
        raise errors.out_of_range(param, value, hi, below=False)


def _number(param: str, value: Any, lo: float | None = None, hi: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise errors.invalid_type(param, "a decimal", value)
    _in_range(param, value, lo, hi)
    return value


def _integer(param: str, value: Any, lo: int | None = None, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise errors.invalid_type(param, "an integer", value)
    _in_range(param, value, lo, hi)
    return value


def _enum(param: str, value: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str):
        raise errors.invalid_type(param, "a string", value)
    if value not in choices:
        raise errors.invalid_value(param, value, choices)
    return value


def _object(param: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise errors.invalid_type(param, "an object", value)
    return value


def _only_keys(param: str, value: dict[str, Any], allowed: tuple[str, ...]) -> None:
    for key in value:
        if key not in allowed:
            raise errors.unknown_parameter(f"{param}.{key}")


def _session_type(param: str, value: Any, _current: Any) -> str:
    return _enum(param, value, SESSION_TYPES)


def _model(param: str, value: Any, current: Any) -> str:
    model = _string(param, value, current)
    if current is not None and model != current:
        # Unverified text: the model is fixed by the connection URL.
        raise errors.RealtimeError(
            "invalid_value",
            f"Invalid value: '{model}'. The model of a session cannot be changed.",
            param=param,
        )
    return model


def _output_modalities(param: str, value: Any, _current: Any) -> list[str]:
    if not isinstance(value, list):
        raise errors.invalid_type(param, "an array", value)
    for index, entry in enumerate(value):
        _enum(f"{param}[{index}]", entry, ("audio", "text"))
    if value not in (["audio"], ["text"]):
        # Unverified text; GA accepts exactly one output modality.
        raise errors.RealtimeError(
            "invalid_value",
            f"Invalid modalities: {value}. Supported combinations are: ['text'] and ['audio'].",
            param=param,
        )
    return list(value)


def audio_format(param: str, value: Any, _current: Any = None) -> dict[str, Any]:
    value = _object(param, value)
    if "type" not in value:
        raise errors.missing_parameter(f"{param}.type")
    kind = _enum(f"{param}.type", value["type"], AUDIO_FORMAT_TYPES)
    if kind == "audio/pcm":
        _only_keys(param, value, ("type", "rate"))
        rate = value.get("rate", PCM_RATE)
        if rate != PCM_RATE:
            raise errors.invalid_value(f"{param}.rate", rate, (PCM_RATE,))
        return {"type": kind, "rate": PCM_RATE}
    _only_keys(param, value, ("type",))
    return {"type": kind}


def _noise_reduction(param: str, value: Any, _current: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    value = _object(param, value)
    _only_keys(param, value, ("type",))
    if "type" not in value:
        raise errors.missing_parameter(f"{param}.type")
    return {"type": _enum(f"{param}.type", value["type"], ("near_field", "far_field"))}


_TRANSCRIPTION_KEYS = ("model", "language", "prompt", "languages", "keywords", "delay")


def _transcription(param: str, value: Any, _current: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    value = _object(param, value)
    _only_keys(param, value, _TRANSCRIPTION_KEYS)
    result: dict[str, Any] = {"model": "whisper-1"}
    for key, item in value.items():
        if key in ("model", "language", "prompt"):
            result[key] = _string(f"{param}.{key}", item, None)
        else:
            result[key] = item
    return result


_SERVER_VAD_DEFAULTS: dict[str, Any] = {
    "type": "server_vad",
    "threshold": 0.5,
    "prefix_padding_ms": 300,
    "silence_duration_ms": 200,
    "idle_timeout_ms": None,
    "create_response": True,
    "interrupt_response": True,
}
_SEMANTIC_VAD_DEFAULTS: dict[str, Any] = {
    "type": "semantic_vad",
    "eagerness": "auto",
    "create_response": True,
    "interrupt_response": True,
}


def _turn_detection(param: str, value: Any, _current: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    value = _object(param, value)
    if "type" not in value:
        raise errors.missing_parameter(f"{param}.type")
    kind = _enum(f"{param}.type", value["type"], ("server_vad", "semantic_vad"))
    defaults = _SERVER_VAD_DEFAULTS if kind == "server_vad" else _SEMANTIC_VAD_DEFAULTS
    _only_keys(param, value, tuple(defaults))
    result = dict(defaults)
    for key, item in value.items():
        sub = f"{param}.{key}"
        if key == "threshold":
            result[key] = _number(sub, item, 0.0, 1.0)
        elif key in ("prefix_padding_ms", "silence_duration_ms"):
            result[key] = _integer(sub, item, 0, None)
        elif key == "idle_timeout_ms":
            result[key] = None if item is None else _integer(sub, item, 0, None)
        elif key in ("create_response", "interrupt_response"):
            result[key] = _boolean(sub, item, None)
        elif key == "eagerness":
            result[key] = _enum(sub, item, ("low", "medium", "high", "auto"))
    return result


def _voice(param: str, value: Any, _current: Any) -> str | dict[str, Any]:
    if isinstance(value, dict):
        _only_keys(param, value, ("id",))
        if "id" not in value:
            raise errors.missing_parameter(f"{param}.id")
        return {"id": _string(f"{param}.id", value["id"], None)}
    return _enum(param, value, VOICES)


def _speed(param: str, value: Any, _current: Any) -> float:
    return _number(param, value, 0.25, 1.5)


def _tools(param: str, value: Any, _current: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise errors.invalid_type(param, "an array", value)
    tools: list[dict[str, Any]] = []
    for index, tool in enumerate(value):
        sub = f"{param}[{index}]"
        tool = _object(sub, tool)
        if "type" not in tool:
            raise errors.missing_parameter(f"{sub}.type")
        kind = _enum(f"{sub}.type", tool["type"], ("function", "mcp"))
        if kind == "function":
            _only_keys(sub, tool, ("type", "name", "description", "parameters"))
            if "name" not in tool:
                raise errors.missing_parameter(f"{sub}.name")
            _string(f"{sub}.name", tool["name"], None)
            if "parameters" in tool:
                _object(f"{sub}.parameters", tool["parameters"])
        elif "server_label" not in tool:
            raise errors.missing_parameter(f"{sub}.server_label")
        tools.append(copy.deepcopy(tool))
    return tools


def _tool_choice(param: str, value: Any, _current: Any) -> str | dict[str, Any]:
    if isinstance(value, str):
        return _enum(param, value, ("auto", "none", "required"))
    value = _object(param, value)
    if "type" not in value:
        raise errors.missing_parameter(f"{param}.type")
    kind = _enum(f"{param}.type", value["type"], ("function", "mcp"))
    if kind == "function":
        _only_keys(param, value, ("type", "name"))
        if "name" not in value:
            raise errors.missing_parameter(f"{param}.name")
        _string(f"{param}.name", value["name"], None)
    return dict(value)


def _max_output_tokens(param: str, value: Any, _current: Any) -> int | str:
    if value == "inf":
        return "inf"
    if isinstance(value, str):
        raise errors.invalid_value(param, value, ("inf",))
    return _integer(param, value, 1, 4096)


def _truncation(param: str, value: Any, _current: Any) -> Any:
    if isinstance(value, str):
        return _enum(param, value, ("auto", "disabled"))
    value = _object(param, value)
    _only_keys(param, value, ("type", "retention_ratio", "token_limits"))
    if value.get("type") != "retention_ratio":
        raise errors.invalid_value(f"{param}.type", value.get("type"), ("retention_ratio",))
    _number(f"{param}.retention_ratio", value.get("retention_ratio"), 0.0, 1.0)
    return copy.deepcopy(value)


def _tracing(param: str, value: Any, current: Any) -> Any:
    if value is None or value == "auto":
        result: Any = value
    else:
        value = _object(param, value)
        _only_keys(param, value, ("workflow_name", "group_id", "metadata"))
        result = copy.deepcopy(value)
    if current is not None and result != current:
        # Unverified text: tracing cannot be modified once enabled.
        raise errors.RealtimeError(
            "invalid_value", "Tracing cannot be modified once enabled.", param=param
        )
    return result


def _nullable_object(param: str, value: Any, _current: Any) -> Any:
    return None if value is None else copy.deepcopy(_object(param, value))


def _reasoning(param: str, value: Any, _current: Any) -> Any:
    if value is None:
        return None
    value = _object(param, value)
    _only_keys(param, value, ("effort",))
    if "effort" in value:
        _enum(f"{param}.effort", value["effort"], ("minimal", "low", "medium", "high", "xhigh"))
    return dict(value)


def _include(param: str, value: Any, _current: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, list):
        raise errors.invalid_type(param, "an array", value)
    for index, entry in enumerate(value):
        _enum(f"{param}[{index}]", entry, ("item.input_audio_transcription.logprobs",))
    return list(value)


def _metadata(param: str, value: Any, _current: Any) -> Any:
    if value is None:
        return None
    value = _object(param, value)
    if len(value) > 16:
        # Unverified text.
        raise errors.RealtimeError(
            "object_above_max_properties",
            f"Invalid '{param}': too many properties. Expected an object with at most 16 "
            f"properties, but got an object with {len(value)} properties instead.",
            param=param,
        )
    for key, entry in value.items():
        if len(key) > 64:
            raise errors.string_too_long(f"{param}.{key}", 64, len(key))
        _string(f"{param}.{key}", entry, None)
        if len(entry) > 512:
            raise errors.string_too_long(f"{param}.{key}", 512, len(entry))
    return dict(value)


def _conversation(param: str, value: Any, _current: Any) -> str:
    return _enum(param, value, ("auto", "none"))


def _input_items(param: str, value: Any, _current: Any) -> list[Any]:
    if not isinstance(value, list):
        raise errors.invalid_type(param, "an array", value)
    return list(value)


# --- the schema tree ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Nested:
    """A nested object whose keys merge individually."""

    fields: dict[str, Validator | _Nested]


_AUDIO_INPUT = _Nested(
    {
        "format": audio_format,
        "noise_reduction": _noise_reduction,
        "transcription": _transcription,
        "turn_detection": _turn_detection,
    }
)
_AUDIO_OUTPUT = _Nested({"format": audio_format, "voice": _voice, "speed": _speed})

SESSION_SCHEMA = _Nested(
    {
        "type": _session_type,
        "model": _model,
        "output_modalities": _output_modalities,
        "instructions": _string,
        "audio": _Nested({"input": _AUDIO_INPUT, "output": _AUDIO_OUTPUT}),
        "tools": _tools,
        "tool_choice": _tool_choice,
        "parallel_tool_calls": _boolean,
        "reasoning": _reasoning,
        "max_output_tokens": _max_output_tokens,
        "truncation": _truncation,
        "tracing": _tracing,
        "prompt": _nullable_object,
        "include": _include,
    }
)

RESPONSE_SCHEMA = _Nested(
    {
        "conversation": _conversation,
        "input": _input_items,
        "instructions": _string,
        "tools": _tools,
        "tool_choice": _tool_choice,
        "output_modalities": _output_modalities,
        "audio": _Nested({"output": _Nested({"format": audio_format, "voice": _voice})}),
        "max_output_tokens": _max_output_tokens,
        "metadata": _metadata,
        "prompt": _nullable_object,
        "reasoning": _reasoning,
        "parallel_tool_calls": _boolean,
    }
)


def _merge(param: str, schema: _Nested, current: dict[str, Any], patch: Any) -> dict[str, Any]:
    patch = _object(param, patch)
    result = dict(current)
    for key, value in patch.items():
        sub = f"{param}.{key}"
        spec = schema.fields.get(key)
        if spec is None:
            raise errors.unknown_parameter(sub)
        if isinstance(spec, _Nested):
            result[key] = _merge(sub, spec, current.get(key) or {}, value)
        else:
            result[key] = spec(sub, value, current.get(key))
    return result


# --- the session --------------------------------------------------------------------------------


def default_session(
    *, session_id: str, model: str, expires_at: int, voice: str = "marin"
) -> dict[str, Any]:
    """The full session object of ``session.created`` (shape of the spec's example)."""
    return {
        "type": "realtime",
        "object": "realtime.session",
        "id": session_id,
        "model": model,
        "output_modalities": ["audio"],
        "instructions": DEFAULT_INSTRUCTIONS,
        "tools": [],
        "tool_choice": "auto",
        "max_output_tokens": "inf",
        "tracing": None,
        "truncation": "auto",
        "prompt": None,
        "expires_at": expires_at,
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": PCM_RATE},
                "transcription": None,
                "noise_reduction": None,
                "turn_detection": dict(_SERVER_VAD_DEFAULTS),
            },
            "output": {
                "format": {"type": "audio/pcm", "rate": PCM_RATE},
                "voice": voice,
                "speed": 1.0,
            },
        },
        "include": None,
    }


def sample_rate(fmt_type: str) -> int:
    """Sample rate of an audio format type (24 kHz PCM16, 8 kHz G.711)."""
    return PCM_RATE if fmt_type == "audio/pcm" else 8000


def type_bytes_per_ms(fmt_type: str) -> float:
    """Bytes per millisecond of an audio format type (48 for PCM16 24 kHz, 8 for G.711)."""
    return 48.0 if fmt_type == "audio/pcm" else 8.0


def bytes_per_ms(fmt: dict[str, Any]) -> float:
    """Bytes per millisecond of an audio format object (see :func:`type_bytes_per_ms`)."""
    return type_bytes_per_ms(fmt["type"])


class SessionConfig:
    """The effective session of one connection.

    ``voice_locked`` is set by the server once assistant audio exists; from then on a
    ``session.update`` that changes the voice is refused with ``cannot_update_voice``.
    """

    def __init__(self, session: dict[str, Any]) -> None:
        self.session = session
        self.voice_locked = False

    def update(self, patch: Any) -> dict[str, Any]:
        """Validate and apply a ``session.update`` payload atomically; return the full session."""
        patch = _object("session", patch)
        if "type" not in patch:
            raise errors.missing_parameter("session.type")
        updated = _merge("session", SESSION_SCHEMA, self.session, patch)
        old_voice = self.session["audio"]["output"]["voice"]
        if self.voice_locked and updated["audio"]["output"]["voice"] != old_voice:
            raise errors.cannot_update_voice()
        self.session = updated
        return self.session

    # Convenient typed views of the effective configuration.

    @property
    def output_modalities(self) -> list[str]:
        modalities: list[str] = self.session["output_modalities"]
        return modalities

    @property
    def input_format(self) -> dict[str, Any]:
        fmt: dict[str, Any] = self.session["audio"]["input"]["format"]
        return fmt

    @property
    def output_format(self) -> dict[str, Any]:
        fmt: dict[str, Any] = self.session["audio"]["output"]["format"]
        return fmt

    @property
    def voice(self) -> str | dict[str, Any]:
        voice: str | dict[str, Any] = self.session["audio"]["output"]["voice"]
        return voice

    @property
    def speed(self) -> float:
        return float(self.session["audio"]["output"]["speed"])

    @property
    def turn_detection(self) -> dict[str, Any] | None:
        td: dict[str, Any] | None = self.session["audio"]["input"]["turn_detection"]
        return td

    @property
    def transcription(self) -> dict[str, Any] | None:
        tr: dict[str, Any] | None = self.session["audio"]["input"]["transcription"]
        return tr

    @property
    def tools(self) -> list[dict[str, Any]]:
        tools: list[dict[str, Any]] = self.session["tools"]
        return tools


def validate_response_params(params: Any) -> dict[str, Any]:
    """Validate the ``response`` object of ``response.create`` (all fields optional)."""
    if params is None:
        return {}
    return _merge("response", RESPONSE_SCHEMA, {}, params)
