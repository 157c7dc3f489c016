"""One frame timer per event loop for every real-time `ClockedAudioSink`.

Why: a sink that plays has to act every frame (20 ms). With a task per sink that is one timer,
one future and one task wake-up per session per frame — at 100 speaking sessions 5,000
wake-ups a second, each costing more than the frame's actual bookkeeping. Here one timer per
loop (and frame length) walks every playing sink instead: 50 wake-ups a second in total.

Each sink keeps its own device timeline (ticks at its anchor + k * frame); a shared tick plays
every frame of every sink that is due by then, so a frame is handed over at most one frame
after its due time — inside the one-chunk device buffer real outputs have — and `played_ms`
is unchanged (positions come from the sink's timeline, not from when the tick ran).

Only sinks on the real clock (`MonotonicClock`) share the ticker; a `ManualClock` sink keeps
its own task, driven by the test's clock.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from typing import Protocol

__all__ = ["SharedTicker", "TickedSink", "shared_ticker"]

log = logging.getLogger(__name__)


class TickedSink(Protocol):
    def on_shared_tick(self, now: float) -> bool:
        """Play what is due by `now`; False when the sink has nothing left to tick."""
        ...


class SharedTicker:
    """Calls `on_shared_tick` of every registered sink once per `period_s` of real time."""

    def __init__(self, loop: asyncio.AbstractEventLoop, period_s: float) -> None:
        self._loop = loop
        self._period = period_s
        self._sinks: dict[TickedSink, None] = {}  # insertion-ordered set
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0

    def __len__(self) -> int:
        return len(self._sinks)

    def add(self, sink: TickedSink) -> None:
        """Tick `sink` from the next shared tick on (idempotent)."""
        self._sinks[sink] = None
        if self._handle is None:
            self._due = time.monotonic() + self._period
            self._handle = self._loop.call_at(self._loop.time() + self._period, self._tick)

    def discard(self, sink: TickedSink) -> None:
        self._sinks.pop(sink, None)

    def _tick(self) -> None:
        self._handle = None
        now = time.monotonic()
        for sink in list(self._sinks):
            try:
                active = sink.on_shared_tick(now)
            except Exception:  # one broken sink must not silence every other call
                log.exception("audio sink failed on the shared tick; dropping it")
                active = False
            if not active:
                self._sinks.pop(sink, None)
        if self._sinks:
            # Keep the grid (no drift); after a stall, resume one period from now.
            self._due = max(self._due + self._period, now + 0.001)
            self._handle = self._loop.call_at(self._loop.time() + self._due - now, self._tick)


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
