"""The event loop a vocalis process runs on: uvloop or asyncio's own.

Why: every caller frame, provider message and playback tick of every session is an event
loop callback; uvloop (libuv, in the `fast` extra) makes each of them cheaper. It is a
drop-in loop, so nothing else changes; `VOCALIS_LOOP=asyncio` opts out (e.g. to rule the
loop out when chasing a bug).

A caller may prefer asyncio when nothing is asked for: `vocalis serve` does, because its
slow-handshake defence pauses accepting through asyncio's `Server` (`AcceptPause`), which
uvloop's server does not offer; `VOCALIS_LOOP=uvloop` trades that defence for the cheaper
loop on a worker that sits behind a proxy which terminates slow clients.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
from collections.abc import Coroutine
from typing import Any, Literal, TypeVar

__all__ = ["LOOP_ENV", "LoopChoiceError", "LoopKind", "loop_kind", "run"]

T = TypeVar("T")
LoopKind = Literal["uvloop", "asyncio"]
LOOP_ENV = "VOCALIS_LOOP"


class LoopChoiceError(ValueError):
    """`VOCALIS_LOOP` names a loop this process cannot run: a setting to fix, not a crash."""


def loop_kind(auto: LoopKind = "uvloop") -> LoopKind:
    """`VOCALIS_LOOP` when set; otherwise `auto` (uvloop only when importable, not on Windows)."""
    choice = os.environ.get(LOOP_ENV, "") or "auto"
    if choice not in ("auto", "uvloop", "asyncio"):
        raise LoopChoiceError(f"{LOOP_ENV} must be auto, uvloop or asyncio, got {choice!r}")
    if choice == "auto":
        choice = auto
    if choice == "asyncio" or os.name == "nt":
        return "asyncio"
    available = importlib.util.find_spec("uvloop") is not None
    if choice == "uvloop" and not available:
        raise LoopChoiceError(
            f"{LOOP_ENV}=uvloop needs the `fast` extra: pip install 'vocalis[fast]'"
        )
    return "uvloop" if available else "asyncio"


def run(main: Coroutine[Any, Any, T], *, auto: LoopKind = "uvloop") -> T:
    """`asyncio.run(main)` on the loop `loop_kind(auto)` picks."""
    try:
        kind = loop_kind(auto)
    except LoopChoiceError:
        main.close()  # never started: no "never awaited" warning on top of the error
        raise
    if kind == "uvloop":
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)
