"""Field validators of the GA session and response objects (one function per wire field).

Each validator takes ``(param path, new value, current value)`` and returns the normalised value
or raises the real API's :class:`~vocalis.sim.errors.RealtimeError` for that field (type, range,
enum, unknown nested key). They know nothing of merging or of null: the schema in
:mod:`vocalis.sim.session_config` decides, per field, what a ``null`` means before calling one.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
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


def string(param: str, value: Any, _current: Any) -> str:
    if not isinstance(value, str):
        raise errors.invalid_type(param, "a string", value)
    return value


def boolean(param: str, value: Any, _current: Any) -> bool:
    if not isinstance(value, bool):
        raise errors.invalid_type(param, "a boolean", value)
    return value


def in_range(param: str, value: float, lo: float | None, hi: float | None) -> None:
    if lo is not None and value < lo:
        raise errors.out_of_range(param, value, lo, below=True)
    if hi is not None and value > hi:
        raise errors.out_of_range(param, value, hi, below=False)


def number(param: str, value: Any, lo: float | None = None, hi: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise errors.invalid_type(param, "a decimal", value)
    in_range(param, value, lo, hi)
    return value


def integer(param: str, value: Any, lo: int | None = None, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise errors.invalid_type(param, "an integer", value)
    in_range(param, value, lo, hi)
    return value


def enum(param: str, value: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str):
        raise errors.invalid_type(param, "a string", value)
    if value not in choices:
        raise errors.invalid_value(param, value, choices)
    return value


def an_object(param: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise errors.invalid_type(param, "an object", value)
    return value


def only_keys(param: str, value: dict[str, Any], allowed: tuple[str, ...]) -> None:
    for key in value:
        if key not in allowed:
            raise errors.unknown_parameter(f"{param}.{key}")


def session_type(param: str, value: Any, _current: Any) -> str:
    return enum(param, value, SESSION_TYPES)


def model(param: str, value: Any, current: Any) -> str:
    model = string(param, value, current)
    if current is not None and model != current:
        # Unverified text: the model is fixed by the connection URL.
        raise errors.RealtimeError(
            "invalid_value",
            f"Invalid value: '{model}'. The model of a session cannot be changed.",
            param=param,
        )
    return model


def output_modalities(param: str, value: Any, _current: Any) -> list[str]:
    if not isinstance(value, list):
        raise errors.invalid_type(param, "an array", value)
    for index, entry in enumerate(value):
        enum(f"{param}[{index}]", entry, ("audio", "text"))
    if value not in (["audio"], ["text"]):
        # Unverified text; GA accepts exactly one output modality.
        raise errors.RealtimeError(
            "invalid_value",
            f"Invalid modalities: {value}. Supported combinations are: ['text'] and ['audio'].",
            param=param,
        )
    return list(value)


def audio_format(param: str, value: Any, _current: Any = None) -> dict[str, Any]:
    value = an_object(param, value)
    if value.get("type") is None:
        raise errors.missing_parameter(f"{param}.type")
    kind = enum(f"{param}.type", value["type"], AUDIO_FORMAT_TYPES)
    if kind == "audio/pcm":
        only_keys(param, value, ("type", "rate"))
        rate = value.get("rate", PCM_RATE)
        if rate != PCM_RATE:
            raise errors.invalid_value(f"{param}.rate", rate, (PCM_RATE,))
        return {"type": kind, "rate": PCM_RATE}
    only_keys(param, value, ("type",))
    return {"type": kind}


def noise_reduction(param: str, value: Any, _current: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    value = an_object(param, value)
    only_keys(param, value, ("type", "strength"))
    if value.get("type") is None:
        raise errors.missing_parameter(f"{param}.type")
    result: dict[str, Any] = {
        "type": enum(f"{param}.type", value["type"], ("near_field", "far_field"))
    }
    if value.get("strength") is not None:
        result["strength"] = number(f"{param}.strength", value["strength"], 0.0, None)
    return result


TRANSCRIPTION_KEYS = ("model", "language", "prompt", "languages", "keywords", "delay")


def transcription(param: str, value: Any, _current: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    value = an_object(param, value)
    only_keys(param, value, TRANSCRIPTION_KEYS)
    result: dict[str, Any] = {"model": "whisper-1"}
    for key, item in value.items():
        if item is None:
            continue  # null = absent (see docs/sim-server.md, behaviour choices)
        if key in ("model", "language", "prompt"):
            result[key] = string(f"{param}.{key}", item, None)
        else:
            result[key] = item
    return result


SERVER_VAD_DEFAULTS: dict[str, Any] = {
    "type": "server_vad",
    "threshold": 0.5,
    "prefix_padding_ms": 300,
    "silence_duration_ms": 200,
    "idle_timeout_ms": None,
    "create_response": True,
    "interrupt_response": True,
}
SEMANTIC_VAD_DEFAULTS: dict[str, Any] = {
    "type": "semantic_vad",
    "eagerness": "auto",
    "create_response": True,
    "interrupt_response": True,
}


def turn_detection(param: str, value: Any, _current: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    value = an_object(param, value)
    if value.get("type") is None:
        raise errors.missing_parameter(f"{param}.type")
    kind = enum(f"{param}.type", value["type"], ("server_vad", "semantic_vad"))
    defaults = SERVER_VAD_DEFAULTS if kind == "server_vad" else SEMANTIC_VAD_DEFAULTS
    only_keys(param, value, tuple(defaults))
    result = dict(defaults)
    for key, item in value.items():
        sub = f"{param}.{key}"
        if item is None and key != "idle_timeout_ms":
            continue  # null = absent: the default stays (idle_timeout_ms: null is "off")
        if key == "threshold":
            result[key] = number(sub, item, 0.0, 1.0)
        elif key in ("prefix_padding_ms", "silence_duration_ms"):
            result[key] = integer(sub, item, 0, None)
        elif key == "idle_timeout_ms":
            result[key] = None if item is None else integer(sub, item, 0, None)
        elif key in ("create_response", "interrupt_response"):
            result[key] = boolean(sub, item, None)
        elif key == "eagerness":
            result[key] = enum(sub, item, ("low", "medium", "high", "auto"))
    return result


def voice(param: str, value: Any, _current: Any) -> str | dict[str, Any]:
    if isinstance(value, dict):
        only_keys(param, value, ("id",))
        if "id" not in value:
            raise errors.missing_parameter(f"{param}.id")
        return {"id": string(f"{param}.id", value["id"], None)}
    return enum(param, value, VOICES)


def speed(param: str, value: Any, _current: Any) -> float:
    return number(param, value, 0.25, 1.5)


def tools(param: str, value: Any, _current: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list):
        raise errors.invalid_type(param, "an array", value)
    tools: list[dict[str, Any]] = []
    for index, tool in enumerate(value):
        sub = f"{param}[{index}]"
        tool = an_object(sub, tool)
        if tool.get("type") is None:
            raise errors.missing_parameter(f"{sub}.type")
        kind = enum(f"{sub}.type", tool["type"], ("function", "mcp"))
        if kind == "function":
            only_keys(sub, tool, ("type", "name", "description", "parameters"))
            if "name" not in tool:
                raise errors.missing_parameter(f"{sub}.name")
            string(f"{sub}.name", tool["name"], None)
            if "parameters" in tool:
                an_object(f"{sub}.parameters", tool["parameters"])
        elif "server_label" not in tool:
            raise errors.missing_parameter(f"{sub}.server_label")
        tools.append(copy.deepcopy(tool))
    return tools


def tool_choice(param: str, value: Any, _current: Any) -> str | dict[str, Any]:
    if isinstance(value, str):
        return enum(param, value, ("auto", "none", "required"))
    value = an_object(param, value)
    if value.get("type") is None:
        raise errors.missing_parameter(f"{param}.type")
    kind = enum(f"{param}.type", value["type"], ("function", "mcp"))
    if kind == "function":
        only_keys(param, value, ("type", "name"))
        if "name" not in value:
            raise errors.missing_parameter(f"{param}.name")
        string(f"{param}.name", value["name"], None)
    return dict(value)


def max_output_tokens(param: str, value: Any, _current: Any) -> int | str:
    if value == "inf":
        return "inf"
    if isinstance(value, str):
        raise errors.invalid_value(param, value, ("inf",))
    return integer(param, value, 1, 4096)


def truncation(param: str, value: Any, _current: Any) -> Any:
    if isinstance(value, str):
        return enum(param, value, ("auto", "disabled"))
    value = an_object(param, value)
    only_keys(param, value, ("type", "retention_ratio", "token_limits"))
    if value.get("type") != "retention_ratio":
        raise errors.invalid_value(f"{param}.type", value.get("type"), ("retention_ratio",))
    number(f"{param}.retention_ratio", value.get("retention_ratio"), 0.0, 1.0)
    return copy.deepcopy(value)


def tracing(param: str, value: Any, current: Any) -> Any:
    if value is None or value == "auto":
        result: Any = value
    else:
        value = an_object(param, value)
        only_keys(param, value, ("workflow_name", "group_id", "metadata"))
        result = copy.deepcopy(value)
    if current is not None and result != current:
        # Unverified text: tracing cannot be modified once enabled.
        raise errors.RealtimeError(
            "invalid_value", "Tracing cannot be modified once enabled.", param=param
        )
    return result


def nullable_object(param: str, value: Any, _current: Any) -> Any:
    return None if value is None else copy.deepcopy(an_object(param, value))


def reasoning(param: str, value: Any, _current: Any) -> Any:
    if value is None:
        return None
    value = an_object(param, value)
    only_keys(param, value, ("effort",))
    if "effort" in value:
        enum(f"{param}.effort", value["effort"], ("minimal", "low", "medium", "high", "xhigh"))
    return dict(value)


def include(param: str, value: Any, _current: Any) -> Any:
    if value is None:
        return None
    if not isinstance(value, list):
        raise errors.invalid_type(param, "an array", value)
    for index, entry in enumerate(value):
        enum(f"{param}[{index}]", entry, ("item.input_audio_transcription.logprobs",))
    return list(value)


def metadata(param: str, value: Any, _current: Any) -> Any:
    if value is None:
        return None
    value = an_object(param, value)
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
        string(f"{param}.{key}", entry, None)
        if len(entry) > 512:
            raise errors.string_too_long(f"{param}.{key}", 512, len(entry))
    return dict(value)


def conversation(param: str, value: Any, _current: Any) -> str:
    return enum(param, value, ("auto", "none"))


def input_items(param: str, value: Any, _current: Any) -> list[Any]:
    if not isinstance(value, list):
        raise errors.invalid_type(param, "an array", value)
    return list(value)
