"""Compact JSON for server events, with the audio payload spliced in instead of re-scanned.

Why: an ``response.output_audio.delta`` is mostly its base64 ``delta`` (2–7 KB for 20–200 ms
of 24 kHz audio), and ``json.dumps`` walks every character of it looking for something to
escape — per delta, per session — although the sim made that text itself, from cached
chunks, in an alphabet that never needs escaping. :func:`base64_text` marks such text
:class:`SafeText` once (when a clip is chunked); :func:`encode_event` writes the rest of the
event with ``json`` and puts a trailing ``SafeText`` value in place unread. The bytes are
exactly what ``json.dumps(event, separators=(",", ":"))`` gives.
"""

from __future__ import annotations

import json
from typing import Any

from vocalis.audio.codec import b64encode_bytes

_SEPARATORS = (",", ":")


class SafeText(str):
    """Text that JSON carries verbatim (no quote, backslash, control or non-ASCII character),
    e.g. standard base64. Only code that produced the text itself may mark it."""

    __slots__ = ()


def base64_text(data: bytes | bytearray | memoryview) -> SafeText:
    """Standard base64 of ``data``, marked :class:`SafeText`: the one way the sim marks text
    safe, so the mark cannot land on text that was not made here in a safe alphabet."""
    return SafeText(b64encode_bytes(data))


def encode_event(event: dict[str, Any]) -> str:
    """``json.dumps(event, separators=(",", ":"))``, cheaper when the last value is SafeText."""
    if event:
        key, value = next(reversed(event.items()))
        if type(value) is SafeText:
            head = json.dumps({**event, key: ""}, separators=_SEPARATORS)
            return "".join((head[:-2], value, head[-2:]))
    return json.dumps(event, separators=_SEPARATORS)
