"""The GA session object: defaults, validation of ``session.update``, atomic application.

A client sends a *partial* session; nested objects ``audio``, ``audio.input`` and
``audio.output`` merge key by key, every other field replaces (turn detection, formats and
transcription objects are normalised with their defaults filled in). The update is validated
against a copy and applied only when every field passed, so a rejected update changes nothing,
as observed on the real API. Beta-era keys (``modalities``, ``voice`` at top level, ...) are
simply unknown keys in the GA shape, and get ``unknown_parameter``.

``null`` is decided field by field (docs/sim-server.md, "Behaviour choices"): for most optional
fields it means "not given" (the real API accepts LiveKit's ``"instructions": null``), for the
few whose documented value ``null`` switches something off (turn detection, transcription,
noise reduction, tracing, prompt, include) it is that value, and for a required field it is a
missing parameter. A session is a realtime or a transcription session for its whole life; an
update of the other type is refused like the real API refuses it.

The same schema machinery checks the per-response overrides of ``response.create``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from vocalis.sim import errors
from vocalis.sim import fields as f
from vocalis.sim.fields import DEFAULT_INSTRUCTIONS, PCM_RATE, Validator

AudioFormatType = Literal["audio/pcm", "audio/pcmu", "audio/pcma"]
VadKind = Literal["server_vad", "semantic_vad"]
Eagerness = Literal["low", "medium", "high", "auto"]


@dataclass(frozen=True, slots=True)
class TurnDetection:
    """The effective turn detection, typed (the wire object is normalised by the validator)."""

    kind: VadKind
    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 200
    idle_timeout_ms: int | None = None
    create_response: bool = True
    interrupt_response: bool = True
    eagerness: Eagerness = "auto"

    @classmethod
    def from_wire(cls, td: dict[str, Any]) -> TurnDetection:
        fields = {k: v for k, v in td.items() if k != "type" and v is not None}
        return cls(kind=td["type"], **fields)


class SessionKind(StrEnum):
    """What a connection is for, fixed when it opens (``?intent=transcription`` or a secret)."""

    REALTIME = "realtime"
    TRANSCRIPTION = "transcription"


@dataclass(frozen=True)
class NullIsValue:
    """A field whose ``null`` is a value (e.g. ``turn_detection: null`` turns VAD off)."""

    validator: Validator


@dataclass(frozen=True)
class Nested:
    """A nested object whose keys merge individually; ``required`` keys refuse null/absence."""

    fields: dict[str, Validator | NullIsValue | Nested]
    required: tuple[str, ...] = ()


_AUDIO_INPUT = Nested(
    {
        "format": f.audio_format,
        "noise_reduction": NullIsValue(f.noise_reduction),
        "transcription": NullIsValue(f.transcription),
        "turn_detection": NullIsValue(f.turn_detection),
    }
)
_AUDIO_OUTPUT = Nested({"format": f.audio_format, "voice": f.voice, "speed": f.speed})

REALTIME_SCHEMA = Nested(
    {
        "type": f.session_type,
        "model": f.model,
        "output_modalities": f.output_modalities,
        "instructions": f.string,
        "audio": Nested({"input": _AUDIO_INPUT, "output": _AUDIO_OUTPUT}),
        "tools": f.tools,
        "tool_choice": f.tool_choice,
        "parallel_tool_calls": f.boolean,
        "reasoning": f.reasoning,
        "max_output_tokens": f.max_output_tokens,
        "truncation": f.truncation,
        "tracing": NullIsValue(f.tracing),
        "prompt": NullIsValue(f.nullable_object),
        "include": NullIsValue(f.include),
    },
    required=("type",),
)

TRANSCRIPTION_SCHEMA = Nested(
    {
        "type": f.session_type,
        "audio": Nested({"input": _AUDIO_INPUT}),
        "include": NullIsValue(f.include),
    },
    required=("type",),
)

RESPONSE_SCHEMA = Nested(
    {
        "conversation": f.conversation,
        "input": f.input_items,
        "instructions": f.string,
        "tools": f.tools,
        "tool_choice": f.tool_choice,
        "output_modalities": f.output_modalities,
        "audio": Nested({"output": Nested({"format": f.audio_format, "voice": f.voice})}),
        "max_output_tokens": f.max_output_tokens,
        "metadata": f.metadata,
        "prompt": f.nullable_object,
        "reasoning": f.reasoning,
        "parallel_tool_calls": f.boolean,
    }
)

SCHEMAS = {SessionKind.REALTIME: REALTIME_SCHEMA, SessionKind.TRANSCRIPTION: TRANSCRIPTION_SCHEMA}


def _merge(param: str, schema: Nested, current: dict[str, Any], patch: Any) -> dict[str, Any]:
    patch = f.an_object(param, patch)
    for key in schema.required:
        if patch.get(key) is None:
            raise errors.missing_parameter(f"{param}.{key}")
    result = dict(current)
    for key, value in patch.items():
        sub = f"{param}.{key}"
        spec = schema.fields.get(key)
        if spec is None:
            raise errors.unknown_parameter(sub)
        if isinstance(spec, NullIsValue):
            result[key] = spec.validator(sub, value, current.get(key))
        elif value is None:
            continue  # null = not given: the current value stays
        elif isinstance(spec, Nested):
            result[key] = _merge(sub, spec, current.get(key) or {}, value)
        else:
            result[key] = spec(sub, value, current.get(key))
    return result


# --- the session --------------------------------------------------------------------------------


def _input_defaults() -> dict[str, Any]:
    return {
        "format": {"type": "audio/pcm", "rate": PCM_RATE},
        "transcription": None,
        "noise_reduction": None,
        "turn_detection": dict(f.SERVER_VAD_DEFAULTS),
    }


def default_session(
    *, session_id: str, model: str, expires_at: int, voice: str = "marin"
) -> dict[str, Any]:
    """The full realtime session object of ``session.created`` (shape of the spec's example)."""
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
            "input": _input_defaults(),
            "output": {
                "format": {"type": "audio/pcm", "rate": PCM_RATE},
                "voice": voice,
                "speed": 1.0,
            },
        },
        "include": None,
    }


def default_transcription_session(*, session_id: str, expires_at: int) -> dict[str, Any]:
    """The full transcription session object (``?intent=transcription``)."""
    return {
        "type": "transcription",
        "object": "realtime.transcription_session",
        "id": session_id,
        "expires_at": expires_at,
        "audio": {"input": _input_defaults()},
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


def session_type_switch(current: SessionKind, requested: str) -> errors.RealtimeError:
    """The refusal of a ``session.update`` whose type is not the session's."""
    return errors.RealtimeError(
        "invalid_parameter",
        f"Passing a {requested} session update event to a {current} session is not allowed.",
        param="session.type",
    )


class SessionConfig:
    """The effective session of one connection.

    ``voice_locked`` is set by the server once assistant audio exists; from then on a
    ``session.update`` that changes the voice is refused with ``cannot_update_voice``.
    """

    def __init__(self, session: dict[str, Any]) -> None:
        self.session = session
        self.kind = SessionKind(session["type"])
        self.voice_locked = False

    def update(self, patch: Any) -> dict[str, Any]:
        """Validate and apply a ``session.update`` payload atomically; return the full session."""
        patch = f.an_object("session", patch)
        requested = patch.get("type")
        if requested is None:
            raise errors.missing_parameter("session.type")
        if requested in tuple(SessionKind) and requested != self.kind:
            raise session_type_switch(self.kind, requested)
        updated = _merge("session", SCHEMAS[self.kind], self.session, patch)
        if self.kind is SessionKind.REALTIME:
            old_voice = self.session["audio"]["output"]["voice"]
            if self.voice_locked and updated["audio"]["output"]["voice"] != old_voice:
                raise errors.cannot_update_voice()
        self.session = updated
        return self.session

    # Convenient typed views of the effective configuration.

    @property
    def output_modalities(self) -> list[str]:
        modalities: list[str] = self.session.get("output_modalities", [])
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
    def vad(self) -> TurnDetection | None:
        """The turn detection as a typed value (None: turns are committed by the client)."""
        td = self.turn_detection
        return TurnDetection.from_wire(td) if td is not None else None

    @property
    def input_format_type(self) -> AudioFormatType:
        kind: AudioFormatType = self.input_format["type"]
        return kind

    @property
    def transcription(self) -> dict[str, Any] | None:
        tr: dict[str, Any] | None = self.session["audio"]["input"]["transcription"]
        return tr

    @property
    def tools(self) -> list[dict[str, Any]]:
        tools: list[dict[str, Any]] = self.session.get("tools", [])
        return tools


def validate_response_params(params: Any) -> dict[str, Any]:
    """Validate the ``response`` object of ``response.create`` (all fields optional)."""
    if params is None:
        return {}
    return _merge("response", RESPONSE_SCHEMA, {}, params)


def session_from_request(kind: SessionKind, base: dict[str, Any], request: Any) -> dict[str, Any]:
    """A full session object: ``base`` with a client-secret request's ``session`` applied."""
    return _merge("session", SCHEMAS[kind], copy.deepcopy(base), request)
