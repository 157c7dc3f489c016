"""Event-loop lag: how late the loop runs a task that asked to wake up on time.

Why it exists: a voice worker's first symptom of overload is not CPU but lateness — 20 ms audio
frames and watchdogs that fire late make audio choppy long before anything crashes (S28 asks
for loop lag p99 < 20 ms). The monitor sleeps `interval_s` over and over and records how much
later than asked it woke up: that excess is time the loop spent on other work without yielding.

Time and sleep are injectable so the arithmetic is tested without real waiting.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable

__all__ = ["LAG_BUCKETS_S", "LagHistogram", "LoopLagMonitor"]

# Prometheus-style upper bounds (seconds); 20 ms is the S28 budget.
LAG_BUCKETS_S: tuple[float, ...] = (0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class LagHistogram:
    """Cumulative-bucket histogram of lag samples (the Prometheus histogram shape)."""

    def __init__(self, buckets: tuple[float, ...] = LAG_BUCKETS_S) -> None:
        self.buckets = buckets
        self.counts = [0] * len(buckets)  # per bucket, non-cumulative
        self.count = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.count += 1
        self.sum += value
        for index, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[index] += 1
                return

    def cumulative(self) -> list[tuple[float, int]]:
        """(upper bound, samples <= bound) for each bucket; +Inf is `count`."""
        total = 0
        out: list[tuple[float, int]] = []
        for bound, n in zip(self.buckets, self.counts, strict=True):
            total += n
            out.append((bound, total))
        return out


class LoopLagMonitor:
    """Samples loop lag every `interval_s`; keeps a histogram, the last value and a window max."""

    def __init__(
        self,
        interval_s: float = 0.25,
        *,
        window_s: float = 60.0,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.interval_s = interval_s
        self.window_s = window_s
        self._monotonic = monotonic
        self._sleep = sleep
        self.histogram = LagHistogram()
        self.last_s = 0.0
        self._recent: deque[tuple[float, float]] = deque()
        self._task: asyncio.Task[None] | None = None
        # Also told each sample (a pool worker's histogram in the pool's metric files).
        self.on_sample: Callable[[float], None] | None = None

    def record(self, at: float, lag_s: float) -> None:
        lag_s = max(0.0, lag_s)
        self.last_s = lag_s
        self.histogram.observe(lag_s)
        if self.on_sample is not None:
            self.on_sample(lag_s)
        self._recent.append((at, lag_s))
        horizon = at - self.window_s
        while self._recent and self._recent[0][0] < horizon:
            self._recent.popleft()

    @property
    def max_recent_s(self) -> float:
        """Largest lag seen within the last `window_s` (0 when nothing was sampled)."""
        return max((lag for _, lag in self._recent), default=0.0)

    async def run(self) -> None:
        """Sample forever (cancel to stop)."""
        while True:
            start = self._monotonic()
            await self._sleep(self.interval_s)
            now = self._monotonic()
            self.record(now, now - start - self.interval_s)

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self.run(), name="loop-lag")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
