"""One poll timer per clock for every transcript follower.

Why: a caption only needs a fresh word every ~100 ms, but a timer per speaking session is a
timer, a future, a task wake-up and a race against the segment's end per session per poll —
at 100 speaking sessions 1,000 of them a second, and in the profile of a loaded agent that
waiting machinery cost more than finding the heard words. Here every follower on the same
clock and interval is polled by one task: 10 wake-ups a second in total.

Every real-time session has its own `MonotonicClock`, but they all read the same time, so
they share one ticker; any other clock (a test's `ManualClock`) gets its own, driven by that
clock. A ticker's task exists only while it has followers: the last one leaving cancels it,
so nothing outlives the sessions that used it.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable

from vocalis.utils.clock import Clock, MonotonicClock

__all__ = ["FollowTicker", "follow_ticker"]

Poll = Callable[[], None]


class FollowTicker:
    """Calls every registered poll once per `interval` seconds of `clock`."""

    def __init__(self, clock: Clock, interval: float, on_idle: Callable[[], None]) -> None:
        self._clock = clock
        self._interval = interval
        self._on_idle = on_idle
        # poll -> the future its follower waits on (failed with the poll's error)
        self._polls: dict[Poll, asyncio.Future[None]] = {}
        self._task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._polls)

    def add(self, poll: Poll) -> asyncio.Future[None]:
        """Poll from the next tick on. The future fails with the error `poll` raised (it is
        then polled no more); it never succeeds: `discard` is how a follower leaves."""
        failed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._polls[poll] = failed
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="vocalis:transcript-ticker"
            )
            self._task.add_done_callback(self._stopped)
        return failed

    def discard(self, poll: Poll) -> None:
        failed = self._polls.pop(poll, None)
        if failed is not None:
            failed.cancel()
        if not self._polls and self._task is not None:
            self._task.cancel()  # no timer outlives the last follower
            self._task = None
            self._on_idle()

    async def _run(self) -> None:
        while True:
            await self._clock.sleep(self._interval)
            for poll, failed in list(self._polls.items()):
                try:
                    poll()
                except Exception as error:  # that follower fails; the others keep going
                    del self._polls[poll]
                    failed.set_exception(error)

    def _stopped(self, task: asyncio.Task[None]) -> None:
        """The timer itself failed (its clock did): every follower fails with that error."""
        if task.cancelled() or task.exception() is None:
            return
        error = task.exception()
        assert error is not None
        if self._task is task:
            self._task = None
        for failed in self._polls.values():
            if not failed.done():
                failed.set_exception(error)
        self._polls.clear()
        self._on_idle()


# Per event loop: the real clock's tickers (key None) and any other clock's, by interval.
_TICKERS: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[Clock | None, float], FollowTicker]
] = weakref.WeakKeyDictionary()


def follow_ticker(clock: Clock, interval: float) -> FollowTicker:
    """The running loop's ticker for `clock` and `interval` (created on first use, dropped
    when its last follower leaves)."""
    loop = asyncio.get_running_loop()
    tickers = _TICKERS.setdefault(loop, {})
    key = (None if type(clock) is MonotonicClock else clock, interval)
    ticker = tickers.get(key)
    if ticker is None:

        def forget() -> None:
            if tickers.get(key) is ticker:
                del tickers[key]

        ticker = tickers[key] = FollowTicker(clock, interval, forget)
    return ticker
