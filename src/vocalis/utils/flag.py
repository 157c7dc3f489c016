"""`Flag`: `asyncio.Event`'s interface, with its waiters' list only while someone waits.

Why: `asyncio.Event` allocates a deque (~0.6 KB; ~0.8 KB with the event) when it is
created, waited on or not. A speaking session holds several flags that are read far more
often than waited on — connected, closed, a socket's writability, a transport's hang-up —
and most of them are never waited on at all in a call (#17, memory per session). Here an
unwaited flag is a bool and an empty slot (~56 bytes).

Same behaviour as `asyncio.Event` (a property test holds the two side by side): `set()`
wakes every current waiter, a waiter cancelled before it ran leaves nothing behind, `clear()`
affects only later waits.
"""

from __future__ import annotations

import asyncio
from typing import Literal

__all__ = ["Flag"]


class Flag:
    """A settable flag tasks can wait on (see the module doc for why not `asyncio.Event`)."""

    __slots__ = ("_set", "_waiters")

    def __init__(self) -> None:
        self._set = False
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        """Set the flag and wake every task waiting for it."""
        if self._set:
            return
        self._set = True
        waiters, self._waiters = self._waiters, None
        if waiters:
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    def clear(self) -> None:
        self._set = False

    async def wait(self) -> Literal[True]:
        """Return once the flag is set (at once if it is)."""
        if self._set:
            return True
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters = self._waiters
        if waiters is None:
            waiters = self._waiters = []
        waiters.append(waiter)
        try:
            await waiter
            return True
        finally:
            current = self._waiters
            if current is not None and waiter in current:
                current.remove(waiter)
                if not current:
                    self._waiters = None
