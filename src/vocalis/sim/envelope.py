"""The envelope of a client frame: strict JSON decoding and the checks every event gets.

Before an event reaches its handler the real API checks the frame (JSON, an object), the
``type`` (present, a string, known, allowed in this kind of session), that no unknown top-level
key is present, and the ``event_id`` (a string of at most 512 characters). Field helpers here
read the few scalar fields handlers need, with null meaning "not given".
"""

from __future__ import annotations

import json
from typing import Any

from vocalis.sim import errors
from vocalis.sim.session_config import SessionKind


def _no_constants(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


# One decoder for every frame (json.loads with a keyword builds a decoder per call).
_STRICT_JSON = json.JSONDecoder(parse_constant=_no_constants)

CLIENT_KEYS: dict[str, tuple[str, ...]] = {
    "session.update": ("session",),
    "input_audio_buffer.append": ("audio",),
    "input_audio_buffer.commit": (),
    "input_audio_buffer.clear": (),
    "conversation.item.create": ("item", "previous_item_id"),
    "conversation.item.retrieve": ("item_id",),
    "conversation.item.truncate": ("item_id", "content_index", "audio_end_ms"),
    "conversation.item.delete": ("item_id",),
    "response.create": ("response",),
    "response.cancel": ("response_id",),
    "output_audio_buffer.clear": (),
}
# Client events a transcription session accepts; the rest are refused (no conversation there).
TRANSCRIPTION_EVENTS = frozenset(
    (
        "session.update",
        "input_audio_buffer.append",
        "input_audio_buffer.commit",
        "input_audio_buffer.clear",
    )
)


class MalformedFrame(Exception):
    """A frame that is not a JSON object; ``error`` is the event to answer with."""

    def __init__(self, error: errors.RealtimeError) -> None:
        super().__init__(error.message)
        self.error = error


def decode(raw: str | bytes) -> dict[str, Any]:
    """The event object of a frame, or :class:`MalformedFrame`."""
    try:
        event = _STRICT_JSON.decode(raw if isinstance(raw, str) else raw.decode("utf-8"))
    except json.JSONDecodeError as exc:
        raise MalformedFrame(errors.invalid_json(exc.msg)) from None
    except UnicodeDecodeError:
        raise MalformedFrame(errors.invalid_json("not UTF-8")) from None
    except (ValueError, RecursionError):
        # NaN/Infinity (not JSON), or nesting deeper than the decoder's stack: refused like
        # any malformed event (the client and both endpoints already do), not a crash.
        raise MalformedFrame(errors.invalid_json("NaN, Infinity or nesting too deep")) from None
    if not isinstance(event, dict):
        raise MalformedFrame(errors.invalid_event("The event must be a JSON object."))
    return event


def check(event: dict[str, Any], kind: SessionKind) -> str:
    """The event's type, once the envelope passed every check (else the API's error)."""
    event_type = event.get("type")
    if event_type is None:
        raise errors.missing_type()
    if not isinstance(event_type, str):
        raise errors.invalid_type("type", "a string", event_type)
    allowed = CLIENT_KEYS.get(event_type)
    if allowed is None:
        raise errors.unknown_event_type(event_type)
    if kind is SessionKind.TRANSCRIPTION and event_type not in TRANSCRIPTION_EVENTS:
        raise errors.not_in_transcription_session(event_type)
    for key in event:
        if key not in allowed and key not in ("type", "event_id"):
            raise errors.unknown_parameter(key)
    event_id = event.get("event_id")
    if event_id is not None:
        if not isinstance(event_id, str):
            raise errors.invalid_type("event_id", "a string", event_id)
        if len(event_id) > 512:
            raise errors.string_too_long("event_id", 512, len(event_id))
    return event_type


def client_event_id(event: dict[str, Any]) -> str | None:
    value = event.get("event_id")
    return value if isinstance(value, str) else None


def string(event: dict[str, Any], key: str) -> str:
    """A required string field."""
    value = optional_string(event, key)
    if value is None:
        raise errors.missing_parameter(key)
    return value


def optional_string(event: dict[str, Any], key: str) -> str | None:
    value = event.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise errors.invalid_type(key, "a string", value)
    return value


def integer(event: dict[str, Any], key: str) -> int:
    """A required integer field (a float with no fraction is accepted)."""
    value = event.get(key)
    if value is None:
        raise errors.missing_parameter(key)
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise errors.invalid_type(key, "an integer", value)
    return value
