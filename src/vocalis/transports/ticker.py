"""One frame timer per event loop for every real-time `ClockedAudioSink`.

Why: a sink that plays has to act every frame (20 ms). With a task per sink that is one timer,
one future and one task wake-up per session per frame — at 100 speaking sessions 5,000
wake-ups a second, each costing more than the frame's actual bookkeeping. Here one timer per
loop (and frame length) walks every playing sink instead: 50 wake-ups a second in total.

Each sink keeps its own device timeline (ticks at its anchor + k * frame); a shared tick plays
every frame of every sink that is due by then, so a frame is handed over at most one frame
after its due time — inside the one-chunk device buffer real outputs have — and `played_ms`
is unchanged (positions come from the sink's timeline, not from when the tick ran).

A sink that needs no tick for a while (nothing to hand to a device until its head segment's
audio runs out) *sleeps*: `sleep_until(sink, t)` takes it off the per-tick walk until the first
shared tick at or after `t`, so an idle-but-playing sink costs nothing per frame (not even a
cache miss on its state).

Only sinks on the real clock (`MonotonicClock`) share the ticker; a `ManualClock` sink keeps
its own task, driven by the test's clock.

The same walk serves other periodic work (the transcript followers, `runtime/follow_ticker.py`),
also on a non-real clock: given a `clock`, the ticker is driven by one task sleeping on that
clock instead of loop timers, and it stops (calling `on_stop`) when its last member leaves.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import math
import time
import weakref
from collections.abc import Callable
from typing import Protocol

from vocalis.utils.clock import Clock

__all__ = ["SharedTicker", "TickedSink", "shared_ticker"]

log = logging.getLogger(__name__)


class TickedSink(Protocol):
    def on_shared_tick(self, now: float) -> bool:
        """Play what is due by `now`; False when the sink has nothing left to tick."""
        ...


class SharedTicker:
    """Calls `on_shared_tick` of every registered sink once per `period_s` of real time (or
    of `clock`'s time, when given: then a task named `name` drives it)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        period_s: float,
        *,
        clock: Clock | None = None,
        name: str = "vocalis:shared-ticker",
        on_stop: Callable[[BaseException | None], None] | None = None,
    ) -> None:
        self._loop = loop
        self._period = period_s
        self._clock = clock
        self._name = name
        # Told when the ticker stops with no member left (None) or its clock failed (error).
        self._on_stop = on_stop
        self._task: asyncio.Task[None] | None = None
        self._sinks: dict[TickedSink, None] = {}  # insertion-ordered set
        # Sleeping sinks: when each wants its next tick; the heap orders them (an entry whose
        # time no longer matches `_sleeping` is stale and skipped).
        self._sleeping: dict[TickedSink, float] = {}
        self._wakeups: list[tuple[float, int, TickedSink]] = []
        self._seq = itertools.count()
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0

    def __len__(self) -> int:
        """Sinks registered, ticked every period or sleeping."""
        return len(self._sinks) + len(self._sleeping)

    def add(self, sink: TickedSink) -> None:
        """Tick `sink` from the next shared tick on (idempotent; ends a sleep)."""
        self._sleeping.pop(sink, None)
        self._sinks[sink] = None
        self._start()

    def sleep_until(self, sink: TickedSink, at: float) -> None:
        """Tick `sink` next at the first shared tick at or after `at` (`time.monotonic()`).

        The sink leaves the per-tick walk (it must return False from this tick's
        `on_shared_tick`); `add` wakes it earlier."""
        self._sinks.pop(sink, None)
        self._sleeping[sink] = at
        heapq.heappush(self._wakeups, (at, next(self._seq), sink))
        self._start()

    def discard(self, sink: TickedSink) -> None:
        """Tick `sink` no more; the last member leaving stops the timer (no timer outlives it)."""
        self._sinks.pop(sink, None)
        self._sleeping.pop(sink, None)
        if not self._sinks and not self._sleeping:
            self._stop(None)

    def _start(self) -> None:
        if self._clock is not None:
            if self._task is None:
                self._task = self._loop.create_task(self._run(self._clock), name=self._name)
                self._task.add_done_callback(self._stopped)
        elif self._handle is None:
            self._due = time.monotonic() + self._period
            self._handle = self._loop.call_at(self._loop.time() + self._period, self._tick)

    def _stop(self, error: BaseException | None) -> None:
        task, self._task = self._task, None
        handle, self._handle = self._handle, None
        if task is None and handle is None:
            return
        if task is not None and error is None:
            task.cancel()
        if handle is not None:
            handle.cancel()
        self._wakeups.clear()
        if self._on_stop is not None:
            self._on_stop(error)

    async def _run(self, clock: Clock) -> None:
        while True:
            await clock.sleep(self._period)
            self._walk(clock.now())
            if not self._sinks and not self._sleeping:
                self._task = None
                if self._on_stop is not None:
                    self._on_stop(None)
                return

    def _stopped(self, task: asyncio.Task[None]) -> None:
        """The clock itself failed: every member is dropped and `on_stop` gets the error."""
        if task.cancelled() or task.exception() is None:
            return
        self._sinks.clear()
        self._sleeping.clear()
        if self._task is task:
            self._stop(task.exception())

    def _walk(self, now: float) -> None:
        """Step every ticked sink, the sleepers due by `now` included."""
        sinks = self._sinks
        wakeups = self._wakeups
        sleeping = self._sleeping
        while wakeups and wakeups[0][0] <= now:
            at, _, sink = heapq.heappop(wakeups)
            if sleeping.get(sink) == at:
                del sleeping[sink]
                sinks[sink] = None
        for sink in list(sinks):
            try:
                active = sink.on_shared_tick(now)
            except Exception:  # one broken sink must not silence every other call
                log.exception("audio sink failed on the shared tick; dropping it")
                sleeping.pop(sink, None)
                active = False
            if not active:
                sinks.pop(sink, None)

    def _tick(self) -> None:
        self._handle = None
        now = time.monotonic()
        self._walk(now)
        sleeping = self._sleeping
        wakeups = self._wakeups
        if self._sinks or sleeping:
            # Keep the grid (no drift); after a stall, resume one period from now. With every
            # sink asleep, skip to the grid tick of the earliest wake-up.
            due = max(self._due + self._period, now + 0.001)
            if not self._sinks:
                while wakeups and sleeping.get(wakeups[0][2]) != wakeups[0][0]:
                    heapq.heappop(wakeups)  # stale: woken or discarded since
                if wakeups and wakeups[0][0] > due:
                    due += math.ceil((wakeups[0][0] - due) / self._period) * self._period
            self._due = due
            self._handle = self._loop.call_at(self._loop.time() + due - now, self._tick)
        elif self._on_stop is not None:
            self._on_stop(None)


_TICKERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[float, SharedTicker]] = (
    weakref.WeakKeyDictionary()
)


def shared_ticker(period_s: float) -> SharedTicker:
    """The running loop's ticker for frames of `period_s` (created on first use)."""
    loop = asyncio.get_running_loop()
    by_period = _TICKERS.setdefault(loop, {})
    ticker = by_period.get(period_s)
    if ticker is None:
        ticker = by_period[period_s] = SharedTicker(loop, period_s)
    return ticker
