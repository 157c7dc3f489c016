"""Clocks.

Everything in vocalis that depends on the passage of time (playback position, watchdogs,
latency metrics) reads it through a `Clock`, so tests can drive time by hand and assert exact
positions instead of sleeping and hoping.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds on a monotonic timeline (origin arbitrary)."""
        ...

    async def sleep(self, seconds: float) -> None: ...

    async def sleep_until(self, deadline: float) -> None: ...


class MonotonicClock:
    """The real clock: `time.monotonic` and `asyncio.sleep`."""

    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    async def sleep_until(self, deadline: float) -> None:
        await asyncio.sleep(max(0.0, deadline - time.monotonic()))


class ManualClock:
    """A clock that only moves when the test calls `advance()`.

    Sleepers wake in deadline order as time passes them; `advance` yields to the event loop
    between wake-ups so that code reacting to one deadline runs before the next fires.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        await self.sleep_until(self._now + max(0.0, seconds))

    async def sleep_until(self, deadline: float) -> None:
        if deadline <= self._now:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (deadline, next(self._seq), fut))
        await fut

    async def advance(self, seconds: float, *, settle_rounds: int = 20) -> None:
        """Move time forward, waking sleepers in order and letting their reactions run."""
        target = self._now + seconds
        while self._sleepers and self._sleepers[0][0] <= target:
            deadline, _, fut = heapq.heappop(self._sleepers)
            self._now = max(self._now, deadline)
            if not fut.done():
                fut.set_result(None)
            await settle(settle_rounds)
        self._now = target
        await settle(settle_rounds)

    async def run_until(self, seconds: float, *, step: float = 0.01) -> None:
        """Advance in small steps (like a real clock ticking) for `seconds`."""
        end = self._now + seconds
        while self._now < end - 1e-12:
            await self.advance(min(step, end - self._now))


async def settle(rounds: int = 20) -> None:
    """Let ready callbacks run (a few event-loop turns) without moving time."""
    for _ in range(rounds):
        await asyncio.sleep(0)
