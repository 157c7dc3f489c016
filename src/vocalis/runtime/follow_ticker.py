"""One poll timer per clock for every transcript follower.

Why: a caption only needs a fresh word every ~100 ms, but a timer per speaking session is a
timer, a future, a task wake-up and a race against the segment's end per session per poll —
at 100 speaking sessions 1,000 of them a second, and in the profile of a loaded agent that
waiting machinery cost more than finding the heard words. Here every follower on the same
clock and interval is polled by one walk: 10 wake-ups a second in total.

The walk is the sinks' `SharedTicker` (`transports/ticker.py`); this module only adds what a
follower needs on top: its poll as a ticker member, and a future that fails with the error its
poll raised (that follower stops; the others keep going). Every real-time session has its own
`MonotonicClock`, but they all read the same time, so they share one ticker on loop timers; any
other clock (a test's `ManualClock`) gets its own, driven by a task on that clock. A ticker
runs only while it has followers, so nothing outlives the sessions that used it.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable

from vocalis.transports.ticker import SharedTicker
from vocalis.utils.clock import Clock, MonotonicClock

__all__ = ["FollowTicker", "follow_ticker"]

Poll = Callable[[], None]

TASK_NAME = "vocalis:transcript-ticker"


class _Follower:
    """A poll as a ticker member; `failed` gets the error it raised."""

    __slots__ = ("failed", "poll")

    def __init__(self, poll: Poll, failed: asyncio.Future[None]) -> None:
        self.poll = poll
        self.failed = failed

    def on_shared_tick(self, now: float) -> bool:
        try:
            self.poll()
        except Exception as error:  # that follower fails; the others keep going
            self.failed.set_exception(error)
            return False
        return True


class FollowTicker:
    """Calls every registered poll once per `interval` seconds of `clock`."""

    def __init__(self, clock: Clock, interval: float, on_idle: Callable[[], None]) -> None:
        self._on_idle = on_idle
        self._followers: dict[Poll, _Follower] = {}
        # The shared ticker tells this one through a weak reference: a ticker dropped when its
        # last follower left is then freed at once, not left in a cycle for the collector
        # (one per response boundary when every session's followers leave together).
        stopped = weakref.WeakMethod(self._stopped)

        def on_stop(error: BaseException | None) -> None:
            method = stopped()
            if method is not None:
                method(error)

        self._ticker = SharedTicker(
            asyncio.get_running_loop(),
            interval,
            clock=None if type(clock) is MonotonicClock else clock,
            name=TASK_NAME,
            on_stop=on_stop,
        )

    def __len__(self) -> int:
        """Followers still polled."""
        return len(self._ticker)

    def add(self, poll: Poll) -> asyncio.Future[None]:
        """Poll from the next tick on. The future fails with the error `poll` raised (it is
        then polled no more); it never succeeds: `discard` is how a follower leaves."""
        follower = _Follower(poll, asyncio.get_running_loop().create_future())
        self._followers[poll] = follower
        self._ticker.add(follower)
        return follower.failed

    def discard(self, poll: Poll) -> None:
        follower = self._followers.pop(poll, None)
        if follower is not None:
            follower.failed.cancel()
            self._ticker.discard(follower)

    def _stopped(self, error: BaseException | None) -> None:
        """No follower left, or the clock failed: then every follower fails with its error."""
        if error is not None:
            for follower in self._followers.values():
                if not follower.failed.done():
                    follower.failed.set_exception(error)
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
        created: weakref.ref[FollowTicker] | None = None

        def forget() -> None:  # holds the ticker weakly: no cycle once it is dropped
            current = tickers.get(key)
            if current is not None and created is not None and current is created():
                del tickers[key]

        ticker = tickers[key] = FollowTicker(clock, interval, forget)
        created = weakref.ref(ticker)
    return ticker
