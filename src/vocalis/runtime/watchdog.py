"""Stall detection: nothing may wait on a provider forever.

Field reports (P15-P18) share one shape: a response starts, then the provider goes quiet — no
audio, no `response.done`, no error — and the agent sits in `speaking`/`thinking` until the
caller says "hello?". `StallWatchdog` watches one response's *progress* (any message, audio,
text or tool call) on the session clock; after `limit_s` without progress it reports the stall,
asks for a cancel, and if even the cancel is not acknowledged within `ack_s` it gives up on the
provider, so the runtime can settle the response and return to listening on its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from vocalis.runtime.tasks import wait_for
from vocalis.utils.clock import Clock


class StallWatchdog:
    def __init__(
        self,
        clock: Clock,
        *,
        limit_s: float,
        ack_s: float,
        ended: asyncio.Future[Any],
        last_progress: Callable[[], float],
        on_stall: Callable[[], Awaitable[None]],
        on_unacknowledged: Callable[[], None],
    ) -> None:
        self._clock = clock
        self._limit = limit_s
        self._ack = ack_s
        self._ended = ended
        self._last_progress = last_progress
        self._on_stall = on_stall
        self._on_unacknowledged = on_unacknowledged

    async def run(self) -> None:
        clock = self._clock
        while not self._ended.done():
            remaining = self._last_progress() + self._limit - clock.now()
            if remaining > 0:
                await wait_for(self._ended, clock, remaining)
                continue
            await self._on_stall()
            if not await wait_for(self._ended, clock, self._ack):
                self._on_unacknowledged()
            return
