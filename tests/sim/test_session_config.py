"""session.update validation: required type, unknown/beta keys, voice lock, atomicity."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from vocalis.sim import errors
from vocalis.sim.session_config import SessionConfig, default_session, validate_response_params


def _config() -> SessionConfig:
    return SessionConfig(default_session(session_id="sess_1", model="gpt-realtime", expires_at=1))


def _error(config: SessionConfig, patch: Any) -> errors.RealtimeError:
    before = copy.deepcopy(config.session)
    with pytest.raises(errors.RealtimeError) as exc:
        config.update(patch)
    assert config.session == before, "a rejected update must change nothing"
    return exc.value


def test_type_is_required() -> None:
    err = _error(_config(), {"instructions": "x"})
    assert err.payload("cli_9") == {
        "type": "invalid_request_error",
        "code": "missing_required_parameter",
        "message": "Missing required parameter: 'session.type'.",
        "param": "session.type",
        "event_id": "cli_9",
    }


def test_bad_type_value() -> None:
    err = _error(_config(), {"type": "session"})
    assert err.code == "invalid_value"
    assert err.message == (
        "Invalid value: 'session'. Supported values are: 'realtime' and 'transcription'."
    )


@pytest.mark.parametrize(
    "key", ["modalities", "voice", "input_audio_format", "turn_detection", "temperature"]
)
def test_beta_keys_are_unknown(key: str) -> None:
    err = _error(_config(), {"type": "realtime", key: "x"})
    assert err.code == "unknown_parameter"
    assert err.message == f"Unknown parameter: 'session.{key}'."
    assert err.param == f"session.{key}"


def test_unknown_nested_key() -> None:
    err = _error(_config(), {"type": "realtime", "audio": {"input": {"vad": {}}}})
    assert err.message == "Unknown parameter: 'session.audio.input.vad'."


def test_update_is_atomic_when_a_later_field_fails() -> None:
    config = _config()
    err = _error(config, {"type": "realtime", "instructions": "new", "modalities": ["text"]})
    assert err.code == "unknown_parameter"
    assert config.session["instructions"] != "new"


def test_partial_update_merges_nested_audio() -> None:
    config = _config()
    full = config.update(
        {
            "type": "realtime",
            "audio": {
                "output": {"voice": "cedar"},
                "input": {"turn_detection": {"type": "server_vad", "silence_duration_ms": 500}},
            },
            "tools": [
                {"type": "function", "name": "get_weather", "parameters": {"type": "object"}}
            ],
        }
    )
    assert full["audio"]["output"] == {
        "format": {"type": "audio/pcm", "rate": 24000},
        "voice": "cedar",
        "speed": 1.0,
    }
    td = full["audio"]["input"]["turn_detection"]
    assert td["silence_duration_ms"] == 500 and td["threshold"] == 0.5 and td["create_response"]
    assert full["id"] == "sess_1" and full["model"] == "gpt-realtime"
    assert config.tools[0]["name"] == "get_weather"


def test_voice_lock() -> None:
    config = _config()
    config.voice_locked = True
    config.update({"type": "realtime", "audio": {"output": {"voice": "marin"}}})  # unchanged: ok
    err = _error(config, {"type": "realtime", "audio": {"output": {"voice": "cedar"}}})
    assert err.code == "cannot_update_voice"
    assert err.message == "Cannot update a conversation's voice if assistant audio is present."
    assert err.param == "session.audio.output.voice"


@pytest.mark.parametrize(
    ("patch", "code", "param"),
    [
        ({"output_modalities": ["audio", "text"]}, "invalid_value", "session.output_modalities"),
        (
            {"audio": {"output": {"speed": 2}}},
            "decimal_above_max_value",
            "session.audio.output.speed",
        ),
        (
            {"audio": {"output": {"speed": 0.1}}},
            "decimal_below_min_value",
            "session.audio.output.speed",
        ),
        (
            {"audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}}},
            "invalid_value",
            "session.audio.input.format.rate",
        ),
        ({"audio": {"output": {"voice": "bob"}}}, "invalid_value", "session.audio.output.voice"),
        ({"instructions": 3}, "invalid_type", "session.instructions"),
        ({"max_output_tokens": 0}, "integer_below_min_value", "session.max_output_tokens"),
        ({"tool_choice": "sometimes"}, "invalid_value", "session.tool_choice"),
        ({"tools": [{"type": "function"}]}, "missing_required_parameter", "session.tools[0].name"),
        ({"model": "gpt-other"}, "invalid_value", "session.model"),
    ],
)
def test_value_validation(patch: dict[str, Any], code: str, param: str) -> None:
    err = _error(_config(), {"type": "realtime", **patch})
    assert (err.code, err.param) == (code, param)


def test_g711_formats_and_text_modality() -> None:
    config = _config()
    config.update(
        {
            "type": "realtime",
            "output_modalities": ["text"],
            "audio": {
                "input": {"format": {"type": "audio/pcmu"}},
                "output": {"format": {"type": "audio/pcma"}},
            },
        }
    )
    assert config.input_format == {"type": "audio/pcmu"}
    assert config.output_format == {"type": "audio/pcma"}
    assert config.output_modalities == ["text"]


def test_response_params() -> None:
    params = validate_response_params(
        {"conversation": "none", "instructions": "Say exactly: hi", "metadata": {"k": "v"}}
    )
    assert params["conversation"] == "none"
    with pytest.raises(errors.RealtimeError) as exc:
        validate_response_params({"modalities": ["text"]})
    assert exc.value.message == "Unknown parameter: 'response.modalities'."
