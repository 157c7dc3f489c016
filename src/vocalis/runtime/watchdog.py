"""Stall detection: nothing may wait on a provider forever.

Field reports (P15-P18) share one shape: a response starts, then the provider goes quiet — no
audio, no `response.done`, no error — and the agent sits in `speaking`/`thinking` until the
caller says "hello?". `StallWatchdog` watches each open response's *progress* (any message,
audio, text or tool call) on the session clock; after `limit_s` without progress it reports
the stall, asks for a cancel, and if even the cancel is not acknowledged within `ack_s` it
gives up on the provider, so the runtime can settle the response and return to listening on
its own.

One watchdog per session, not one task per response: at a lockstep response boundary (#17)
every session starts a response at once, and a task each is a coroutine, a future and loop
turns for a timer that almost never fires. The watchdog's one task sleeps until the earliest
deadline among the responses it watches; a new response never has an earlier deadline than
one already watched (its progress is now), so watching it costs no wake-up unless the
watchdog was idle. Only a stall gets a task of its own (the cancel and its acknowledgement).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, Protocol

from vocalis.runtime.tasks import TaskOwner, wait_for
from vocalis.utils.clock import Clock

__all__ = ["StallWatchdog", "Watched", "next_check"]


class Watched(Protocol):
    """A response as the watchdog sees it."""

    @property
    def response_id(self) -> str: ...

    @property
    def last_progress(self) -> float:
        """Session clock time of the response's last message, audio, text or tool call."""
        ...

    @property
    def ended(self) -> asyncio.Future[Any]:
        """Resolves at the provider's end of the response (also its cancel's acknowledgement)."""
        ...

    def on_stall(self) -> Awaitable[None]:
        """Report the stall and ask the provider to cancel."""
        ...

    def on_unacknowledged(self) -> None:
        """The provider ignored the cancel: stop waiting for it."""
        ...


def next_check(
    progress: dict[str, float], now: float, limit_s: float
) -> tuple[list[str], float | None]:
    """Which responses stalled at `now` (no progress for `limit_s`), and when the next one
    may stall (None: nothing watched). `progress`: response id → time of its last progress."""
    stalled = [rid for rid, last in progress.items() if last + limit_s <= now]
    pending = [last + limit_s for rid, last in progress.items() if last + limit_s > now]
    return stalled, min(pending, default=None)


class StallWatchdog:
    """Watches a session's open responses (see the module docstring)."""

    def __init__(self, clock: Clock, owner: TaskOwner, *, limit_s: float, ack_s: float) -> None:
        self._clock = clock
        self._owner = owner
        self._limit = limit_s
        self._ack = ack_s
        self._watched: dict[str, Watched] = {}
        self._stalls: dict[str, asyncio.Task[None]] = {}
        self._task: asyncio.Task[None] | None = None
        # When the task wakes next (None: it waits until something is watched).
        self._sleeping_until: float | None = None
        self._wake: asyncio.Future[None] | None = None

    def watch(self, response: Watched) -> None:
        """Watch `response` until `unwatch` (or its end)."""
        if self._owner.closed or response.ended.done():
            return
        self._watched[response.response_id] = response
        if self._task is None:
            self._task = self._owner.spawn(self._run(), "stall-watchdog")
            return
        due = response.last_progress + self._limit
        if self._sleeping_until is None or due < self._sleeping_until:
            self._wake_up()

    def unwatch(self, response: Watched) -> None:
        """Stop watching `response` (it ended or settled); a stall in progress is dropped."""
        self._watched.pop(response.response_id, None)
        stall = self._stalls.pop(response.response_id, None)
        if stall is not None:
            stall.cancel()

    def _wake_up(self) -> None:
        wake = self._wake
        if wake is not None and not wake.done():
            wake.set_result(None)

    async def _run(self) -> None:
        clock = self._clock
        loop = asyncio.get_running_loop()
        while True:
            now = clock.now()
            for rid in [rid for rid, r in self._watched.items() if r.ended.done()]:
                del self._watched[rid]  # ended: nothing left to watch (its run unwatches too)
            progress = {rid: r.last_progress for rid, r in self._watched.items()}
            stalled, deadline = next_check(progress, now, self._limit)
            for rid in stalled:
                response = self._watched.pop(rid)
                self._stalls[rid] = self._owner.spawn(self._stall(response), f"stall:{rid}")
            self._sleeping_until = deadline
            self._wake = loop.create_future()
            await wait_for(self._wake, clock, None if deadline is None else deadline - now)
            self._wake = None

    async def _stall(self, response: Watched) -> None:
        try:
            await response.on_stall()
            if not await wait_for(response.ended, self._clock, self._ack):
                response.on_unacknowledged()
        finally:
            self._stalls.pop(response.response_id, None)
