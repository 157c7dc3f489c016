"""The event loop a vocalis process runs on: uvloop when installed, asyncio's own otherwise.

Why: every caller frame, provider message and playback tick of every session is an event
loop callback; uvloop (libuv, in the `fast` extra) makes each of them cheaper. It is a
drop-in loop, so nothing else changes; `VOCALIS_LOOP=asyncio` opts out (e.g. to rule the
loop out when chasing a bug).
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
from collections.abc import Coroutine
from typing import Any, Literal, TypeVar

__all__ = ["LOOP_ENV", "LoopKind", "loop_kind", "run"]

T = TypeVar("T")
LoopKind = Literal["uvloop", "asyncio"]
LOOP_ENV = "VOCALIS_LOOP"


def loop_kind() -> LoopKind:
    """uvloop when importable (and not on Windows), unless `VOCALIS_LOOP=asyncio`."""
    choice = os.environ.get(LOOP_ENV, "") or "auto"
    if choice not in ("auto", "uvloop", "asyncio"):
        raise ValueError(f"{LOOP_ENV} must be auto, uvloop or asyncio, got {choice!r}")
    if choice == "asyncio" or os.name == "nt":
        return "asyncio"
    available = importlib.util.find_spec("uvloop") is not None
    if choice == "uvloop" and not available:
        raise ValueError(f"{LOOP_ENV}=uvloop needs the `fast` extra: pip install 'vocalis[fast]'")
    return "uvloop" if available else "asyncio"


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(main)` on the loop `loop_kind()` picks."""
    if loop_kind() == "uvloop":
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)
