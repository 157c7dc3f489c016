"""Twilio Media Streams wire messages: parse (validated, bounded) and build. No I/O.

Why it exists: a phone call's audio arrives as JSON text frames; a malformed or hostile frame
must fail with one clear sentence, never a KeyError deep in the audio path, and never echo a
large payload (or anything secret) into logs. Outbound messages are built with plain string
formatting — a media message is sent every 20 ms, so no per-frame `json.dumps` of nested
dicts.

Inbound events (Twilio → us): `connected`, `start`, `media`, `mark`, `stop`, `dtmf`.
Outbound (us → Twilio): `media` (base64 μ-law 8 kHz), `mark` (Twilio echoes it back once the
audio sent before it has played; on `clear` it echoes every pending mark at once), `clear`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from vocalis.audio.codec import b64decode_bytes, b64encode_bytes

__all__ = [
    "MAX_MEDIA_PAYLOAD_BYTES",
    "MAX_MESSAGE_BYTES",
    "Connected",
    "Dtmf",
    "Mark",
    "Media",
    "Start",
    "Stop",
    "TwilioEvent",
    "TwilioProtocolError",
    "UnknownEvent",
    "clear_message",
    "mark_message",
    "media_message",
    "parse_message",
]

# A Twilio media frame is 160 bytes of μ-law (≈ 300 bytes of JSON); `start` carries custom
# parameters. 64 KiB leaves ample room and bounds what a peer can make us parse.
MAX_MESSAGE_BYTES = 64 * 1024
MAX_MEDIA_PAYLOAD_BYTES = 16 * 1024
_SID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_MARK_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


class TwilioProtocolError(ValueError):
    """A message that does not follow the Media Streams protocol (message says what)."""


@dataclass(frozen=True, slots=True)
class Connected:
    protocol: str
    version: str


@dataclass(frozen=True, slots=True)
class Start:
    stream_sid: str
    call_sid: str
    account_sid: str
    tracks: tuple[str, ...]
    custom_parameters: dict[str, str] = field(default_factory=dict)
    encoding: str = "audio/x-mulaw"
    sample_rate: int = 8000
    channels: int = 1


@dataclass(frozen=True, slots=True)
class Media:
    track: str
    chunk: int
    timestamp_ms: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class Mark:
    name: str


@dataclass(frozen=True, slots=True)
class Stop:
    stream_sid: str


@dataclass(frozen=True, slots=True)
class Dtmf:
    digit: str


@dataclass(frozen=True, slots=True)
class UnknownEvent:
    """An event type this version does not know (ignored, for forward compatibility)."""

    event: str


TwilioEvent: TypeAlias = Connected | Start | Media | Mark | Stop | Dtmf | UnknownEvent


def _obj(data: dict[str, Any], key: str, event: str) -> dict[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict):
        raise TwilioProtocolError(f"'{event}' message needs an object field '{key}'")
    return value


def _str(data: dict[str, Any], key: str, event: str, *, required: bool = True) -> str:
    value = data.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise TwilioProtocolError(f"'{event}' message needs a string field '{key}'")
    return value


def _int(data: dict[str, Any], key: str, event: str) -> int:
    """Twilio sends numbers as decimal strings ("chunk": "3"); accept ints too.

    ASCII digits only: `str.isdigit()` is also true for "²" or full-width "３", which `int()`
    then refuses or reads as a number no Twilio server sends.
    """
    value = data.get(key, 0)
    if isinstance(value, bool):
        raise TwilioProtocolError(f"'{event}' field '{key}' must be a number")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 12:
        return int(value)
    raise TwilioProtocolError(f"'{event}' field '{key}' must be a number")


def _sid(value: str, what: str) -> str:
    if not _SID_RE.match(value):
        raise TwilioProtocolError(f"invalid {what} (expected 1-64 letters/digits)")
    return value


def parse_message(raw: str | bytes, *, max_bytes: int = MAX_MESSAGE_BYTES) -> TwilioEvent:
    """Parse one inbound text frame. Raises `TwilioProtocolError` with a short reason."""
    if len(raw) > max_bytes:
        raise TwilioProtocolError(f"message of {len(raw)} bytes exceeds the {max_bytes}-byte limit")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        # RecursionError: nested brackets beyond the decoder's depth ("[[[[…" fits easily
        # in the frame limit) are garbage too, not a crash of the reader task.
        raise TwilioProtocolError("message is not valid JSON") from None
    if not isinstance(data, dict):
        raise TwilioProtocolError("message is not a JSON object")
    event = data.get("event")
    if not isinstance(event, str):
        raise TwilioProtocolError("message has no string 'event' field")
    if event == "media":
        return _parse_media(data)
    if event == "mark":
        name = _str(_obj(data, "mark", event), "name", event)
        return Mark(name=name[:256])
    if event == "start":
        return _parse_start(data)
    if event == "connected":
        return Connected(
            protocol=_str(data, "protocol", event, required=False),
            version=_str(data, "version", event, required=False),
        )
    if event == "stop":
        return Stop(stream_sid=_str(data, "streamSid", event, required=False))
    if event == "dtmf":
        return Dtmf(digit=_str(_obj(data, "dtmf", event), "digit", event)[:8])
    return UnknownEvent(event=event[:64])


def _parse_media(data: dict[str, Any]) -> Media:
    """The per-frame message: bounded payload size, strict base64."""
    event = "media"
    media = _obj(data, "media", event)
    payload_b64 = _str(media, "payload", event)
    if len(payload_b64) > MAX_MEDIA_PAYLOAD_BYTES * 4 // 3 + 4:
        raise TwilioProtocolError("media payload too large")
    try:
        payload = b64decode_bytes(payload_b64)
    except ValueError:
        raise TwilioProtocolError("media payload is not valid base64") from None
    return Media(
        track=_str(media, "track", event, required=False) or "inbound",
        chunk=_int(media, "chunk", event),
        timestamp_ms=_int(media, "timestamp", event),
        payload=payload,
    )


def _parse_start(data: dict[str, Any]) -> Start:
    """The call's first message: stream id, media format and the app's custom parameters."""
    event = "start"
    start = _obj(data, "start", event)
    fmt = start.get("mediaFormat") or {}
    if not isinstance(fmt, dict):
        raise TwilioProtocolError("'start' field 'mediaFormat' must be an object")
    params = start.get("customParameters") or {}
    if not isinstance(params, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in params.items()
    ):
        raise TwilioProtocolError("'start' customParameters must map strings to strings")
    tracks = start.get("tracks") or ["inbound"]
    if not isinstance(tracks, list) or not all(isinstance(t, str) for t in tracks):
        raise TwilioProtocolError("'start' tracks must be a list of strings")
    stream_sid = data.get("streamSid") or start.get("streamSid")
    if not isinstance(stream_sid, str):
        raise TwilioProtocolError("'start' message has no streamSid")
    return Start(
        stream_sid=_sid(stream_sid, "streamSid"),
        call_sid=_str(start, "callSid", event, required=False),
        account_sid=_str(start, "accountSid", event, required=False),
        tracks=tuple(tracks),
        custom_parameters=dict(params),
        encoding=str(fmt.get("encoding", "audio/x-mulaw")),
        sample_rate=_int(fmt, "sampleRate", event) if "sampleRate" in fmt else 8000,
        channels=_int(fmt, "channels", event) if "channels" in fmt else 1,
    )


def media_message(stream_sid: str, payload: bytes | bytearray | memoryview) -> str:
    """Outbound audio: base64 μ-law bytes (stream_sid is validated when the call starts)."""
    return (
        '{"event":"media","streamSid":"'
        + stream_sid
        + '","media":{"payload":"'
        + b64encode_bytes(payload)
        + '"}}'
    )


def mark_message(stream_sid: str, name: str) -> str:
    if not _MARK_RE.match(name):
        raise ValueError(f"invalid mark name {name!r}")
    return '{"event":"mark","streamSid":"' + stream_sid + '","mark":{"name":"' + name + '"}}'


def clear_message(stream_sid: str) -> str:
    return '{"event":"clear","streamSid":"' + stream_sid + '"}'
