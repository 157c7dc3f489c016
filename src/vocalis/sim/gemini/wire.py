"""The Gemini Live wire as the sim reads and writes it (BidiGenerateContent JSON frames).

Why a module of its own: the real service accepts field names in camelCase *and* snake_case and
audio in both base64 alphabets, and the official ``google-genai`` SDK relies on it — it sends
``setup`` in camelCase but ``realtime_input`` / ``client_content`` / ``tool_response`` in
snake_case, with nested keys in either spelling (``speechConfig.voice_config``) and URL-safe
base64 audio. Reading every field through :func:`field` keeps that tolerance in one place and
never rewrites user data (tool arguments, JSON schemas keep their own key names).

Server messages are always written in camelCase with standard base64, as the service sends
them; every builder here produces a frame that parses with the SDK's ``LiveServerMessage``.
This is the sim's own code: it shares nothing with the client in ``vocalis.providers.gemini``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from vocalis.audio.codec import b64decode_bytes

__all__ = [
    "WireError",
    "b64decode_any",
    "camel_to_snake",
    "dumps",
    "field",
    "mapping",
    "pcm_rate",
]

_CAMEL_RE = re.compile(r"(?<!^)(?=[A-Z])")
_URLSAFE = bytes.maketrans(b"-_", b"+/")
_RATE_RE = re.compile(r"rate=(\d+)")


class WireError(ValueError):
    """A client frame the service would refuse: closes the socket with 1007 and this reason."""


def camel_to_snake(name: str) -> str:
    """``realtimeInput`` -> ``realtime_input`` (cached by the caller's use of literals)."""
    return _CAMEL_RE.sub("_", name).lower()


_SNAKE: dict[str, str] = {}


def field(obj: dict[str, Any], camel: str) -> Any:
    """``obj[camel]`` or ``obj[snake_case(camel)]`` (camelCase wins when both are present)."""
    if camel in obj:
        return obj[camel]
    snake = _SNAKE.get(camel)
    if snake is None:
        snake = _SNAKE[camel] = camel_to_snake(camel)
    return obj.get(snake)


def mapping(obj: dict[str, Any], camel: str, what: str) -> dict[str, Any] | None:
    """The object-valued field ``camel`` (``None`` when absent); anything else is refused."""
    value = field(obj, camel)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise WireError(f"Invalid value at '{what}' (expected an object)")
    return value


def b64decode_any(data: object, what: str) -> bytes:
    """Decode base64 in the standard or the URL-safe alphabet, padded or not."""
    if not isinstance(data, str):
        raise WireError(f"Invalid value at '{what}' (TYPE_BYTES), expected base64 text")
    raw = data.encode("ascii", "replace").translate(_URLSAFE)
    raw += b"=" * (-len(raw) % 4)
    try:
        return b64decode_bytes(raw)
    except ValueError:
        raise WireError(f"Invalid value at '{what}' (TYPE_BYTES), Base64 decoding failed") from None


def pcm_rate(mime_type: object, what: str) -> int:
    """The sample rate of an ``audio/pcm;rate=N`` mime type (16 kHz when no rate is given)."""
    if not isinstance(mime_type, str) or not mime_type.startswith("audio/pcm"):
        raise WireError(f"Unsupported mime type at '{what}': {mime_type!r}")
    match = _RATE_RE.search(mime_type)
    rate = int(match.group(1)) if match else 16000
    if not 8000 <= rate <= 48000:
        raise WireError(f"Unsupported sample rate at '{what}': {rate}")
    return rate


def dumps(message: dict[str, Any]) -> str:
    """A server frame as compact JSON."""
    return json.dumps(message, separators=(",", ":"))


def parse_frame(frame: str | bytes) -> dict[str, Any]:
    """A client frame as a JSON object (text or binary frames carry the same JSON)."""
    try:
        message = json.loads(frame)
    except (ValueError, UnicodeDecodeError):
        raise WireError("Invalid JSON payload received.") from None
    if not isinstance(message, dict):
        raise WireError("Invalid JSON payload received. Expected an object.")
    return message
