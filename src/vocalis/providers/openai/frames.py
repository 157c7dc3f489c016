"""Server frames to JSON events: the first step of every received event.

Why a module: this runs once per server event (~25 audio deltas and a few transcript deltas
per speaking second and session), and what counts as "not JSON" is part of the protocol
core's input contract (a malformed frame is counted and skipped, never fatal). That contract
is the standard library's decoder with ``NaN``/``Infinity`` refused; the fast path below must
not move it by a single input.

Fast path: with the ``fast`` extra, orjson parses *flat* objects (no ``[`` anywhere, no ``{``
after the first character) — every delta event is one — about 2-3x faster than ``json``.
orjson differs from ``json`` elsewhere: it refuses lone surrogate escapes and numbers beyond
a double (``1e400``), turns integers beyond 64 bits into floats, and nests deeper than the
standard decoder's recursion limit. So its result is taken only when it is a ``dict`` with no
``float`` value (nothing lossy can hide there, and nesting is impossible); anything it refuses
or that fails those checks is decoded by the standard library, exactly as before.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

__all__ = ["decode_server_frame"]


def _reject_constant(name: str) -> Any:
    """`NaN`/`Infinity` are not JSON (RFC 8259); Python's decoder accepts them by default."""
    raise ValueError(f"non-standard JSON constant {name}")


# One decoder for every text frame: `json.loads` with any keyword builds a new decoder (and
# scanner) per call — a third of the parse time of an audio delta event.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


def _stdlib_decode(raw: str | bytes) -> Any | None:
    """The reference decoder: the standard library, `NaN`/`Infinity` refused."""
    try:
        if isinstance(raw, str):
            return _DECODER.decode(raw)
        return json.loads(raw, parse_constant=_reject_constant)  # bytes: encoding detection
    except (ValueError, RecursionError):
        return None


_fast_loads: Callable[[str], Any] | None
try:
    from orjson import loads as _fast_loads
except ImportError:  # pragma: no cover - exercised only without the ``fast`` extra
    _fast_loads = None


def decode_server_frame(raw: str | bytes) -> Any | None:
    """One server frame as JSON, or None when it is not JSON at all.

    `RecursionError` counts as "not JSON": a frame of nested brackets (`[[[[…`, cheap inside
    the 16 MiB frame limit) exceeds the decoder's recursion limit, and letting that escape
    killed the receive loop — the reply was cut and the session reconnected (found by
    bench/fuzz.py). `NaN`/`Infinity` are refused as well.
    """
    if _fast_loads is not None and type(raw) is str and "[" not in raw and raw.find("{", 1) < 0:
        try:
            event = _fast_loads(raw)
        except ValueError:  # orjson.JSONDecodeError: the reference decides
            pass
        else:
            if type(event) is dict and float not in map(type, event.values()):
                return event
    return _stdlib_decode(raw)
