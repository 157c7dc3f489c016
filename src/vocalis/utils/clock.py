"""Clocks.

Everything in vocalis that depends on the passage of time (playback position, watchdogs,
latency metrics) reads it through a `Clock`, so tests can drive time by hand and assert exact
positions instead of sleeping and hoping.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import heapq
import itertools
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

_T = TypeVar("_T")


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


class Cancellable(Protocol):
    """What `call_later` returns: a loop timer handle or a task."""

    def cancel(self) -> object: ...


def call_later(clock: Clock, seconds: float, callback: Callable[[], object]) -> Cancellable:
    """Call `callback` once `seconds` have passed on `clock`; `cancel()` the result to not.

    On the real clock (`MonotonicClock`) a loop timer: a handle, not a task. Why: a timer
    that waits for most of a call (a session recycle due after an hour) would otherwise keep
    a task, its coroutine, a sleep future and a handle alive per session for that hour. On
    any other clock (a test's `ManualClock`) a task sleeping on that clock, so the test's
    clock drives it.
    """
    loop = asyncio.get_running_loop()
    if type(clock) is MonotonicClock:
        return loop.call_later(max(0.0, seconds), callback)

    async def fire() -> None:
        await clock.sleep(seconds)
        callback()

    return loop.create_task(fire(), name="vocalis:clock-timer")


class ManualClock:
    """A clock that only moves when the test calls `advance()`.

    Sleepers wake in deadline order as time passes them; after each wake-up (and at the
    end) `advance` waits until the event loop is idle — every task blocked on something
    (`wait_idle`) — so code reacting to one deadline has run before the next fires, however
    many loop turns (or socket round trips on localhost) it takes. Like trio's
    `wait_all_tasks_blocked` with a hand-driven clock: no test needs a fixed number of
    turns, a real-time poll or a sleep.
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

    @property
    def next_deadline(self) -> float | None:
        """When the earliest sleeper wakes (None: nobody sleeps on this clock)."""
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)  # cancelled sleepers
        return self._sleepers[0][0] if self._sleepers else None

    async def advance(self, seconds: float, *, settle_rounds: int | None = None) -> None:
        """Move time forward, waking sleepers in order and letting their reactions run.

        By default each step waits until the loop is idle (`wait_idle`). `settle_rounds`
        gives a fixed number of loop turns instead: for a benchmark driving many calls in one
        process, where waiting for the whole process to go idle would serialize them.
        """
        target = self._now + seconds

        async def react() -> None:
            if settle_rounds is None:
                await wait_idle()
            else:
                await settle(settle_rounds)

        await react()
        while self._sleepers and self._sleepers[0][0] <= target:
            deadline, _, fut = heapq.heappop(self._sleepers)
            self._now = max(self._now, deadline)
            if not fut.done():
                fut.set_result(None)
                await react()
        self._now = target
        await react()

    async def run_until(self, seconds: float, *, step: float = 0.01) -> None:
        """Advance in small steps (like a real clock ticking) for `seconds`."""
        end = self._now + seconds
        while self._now < end - 1e-12:
            await self.advance(min(step, end - self._now))


async def settle(rounds: int = 20) -> None:
    """Let ready callbacks run (a few event-loop turns) without moving time."""
    for _ in range(rounds):
        await asyncio.sleep(0)


# Consecutive loop turns with nothing ready before the loop counts as idle: a socket write on
# localhost is readable by the peer at once, but its reader is only woken on the next poll.
_IDLE_TURNS = 3
_MIN_TURNS = 20


async def wait_idle(*, max_turns: int = 100_000) -> None:
    """Return once every task is blocked: nothing ready to run, no I/O ready, no fresh thread
    work.

    Each turn yields to the loop; the loop polls its sockets without blocking while this
    task is ready, so data written by one task (a local server) wakes its reader before the
    next turn. Jobs on the loop's default executor (`asyncio.to_thread`: speech synthesis, a
    sync tool) count as busy for their first `IdleTrackingExecutor.grace_s` of real time;
    a job running longer counts as blocked (a tool that hangs must not hang the test's
    clock). Timers do not count: a task sleeping on the real clock is blocked, as in trio's
    `wait_all_tasks_blocked`.
    """
    loop = asyncio.get_running_loop()
    # At least the turns a socket round trip on a loaded machine needs: loopback delivery
    # can lag the writer's `send` by a scheduler tick, invisible to the loop until it lands.
    await settle(_MIN_TURNS)
    ready = getattr(loop, "_ready", None)  # CPython's BaseEventLoop run queue
    if ready is None:  # another loop implementation: the bounded settle is all there is
        return
    executor = IdleTrackingExecutor.install(loop)
    quiet = 0
    for _ in range(max_turns):
        await asyncio.sleep(0)
        if ready:
            quiet = 0
        elif executor.fresh_jobs():
            quiet = 0
            await executor.wait_for_change()
        else:
            quiet += 1
            if quiet >= _IDLE_TURNS:
                return
    raise RuntimeError(f"the event loop never went idle in {max_turns} turns (a busy loop?)")


class IdleTrackingExecutor(concurrent.futures.ThreadPoolExecutor):
    """The loop's default executor, knowing which jobs are in flight so `wait_idle` sees them.

    A finished job is counted done from the loop's own thread, after its result was handed
    back, so there is no moment where the job looks done while the task awaiting it is not
    yet ready to run. The caller gets a relay future: the worker thread settles it (its
    callbacks queue asyncio's hand-back on the loop) and only then queues the count-down, so
    the two reach the loop in that order. (A done callback on the worker's own future would
    be queued before asyncio's, and the loop could run it while the worker thread, preempted
    between the two callbacks, had not queued the hand-back yet.)
    """

    grace_s = 2.0

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(thread_name_prefix="vocalis-idle")
        self._loop = loop
        self._lock = threading.Lock()
        self._jobs: dict[int, float] = {}  # job → real time it was submitted
        self._ids = itertools.count()
        self._changed = asyncio.Event()

    @classmethod
    def install(cls, loop: asyncio.AbstractEventLoop) -> IdleTrackingExecutor:
        current = getattr(loop, "_default_executor", None)
        if isinstance(current, cls):
            return current
        executor = cls(loop)
        loop.set_default_executor(executor)
        if current is not None:
            current.shutdown(wait=False)
        return executor

    def submit(
        self, fn: Callable[..., _T], /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[_T]:
        job = next(self._ids)
        with self._lock:
            self._jobs[job] = time.monotonic()
        inner = super().submit(fn, *args, **kwargs)
        outer: concurrent.futures.Future[_T] = concurrent.futures.Future()

        def cancel_inner(relay: concurrent.futures.Future[_T]) -> None:
            if relay.cancelled():  # the awaiting task was cancelled: drop the job if queued
                inner.cancel()

        outer.add_done_callback(cancel_inner)
        inner.add_done_callback(lambda done: self._hand_back(done, outer, job))
        return outer

    def _hand_back(
        self, done: concurrent.futures.Future[_T], relay: concurrent.futures.Future[_T], job: int
    ) -> None:
        """In the worker thread: settle the relay first, then queue the count-down behind it."""
        with contextlib.suppress(concurrent.futures.InvalidStateError):  # relay cancelled
            if done.cancelled():
                relay.cancel()
            elif (error := done.exception()) is not None:
                relay.set_exception(error)
            else:
                relay.set_result(done.result())
        self._loop.call_soon_threadsafe(self._count_down, job)

    def _count_down(self, job: int) -> None:
        with self._lock:
            self._jobs.pop(job, None)
        self._changed.set()

    def fresh_jobs(self) -> float:
        """Seconds until the youngest job in flight stops counting as busy (0: none counts)."""
        now = time.monotonic()
        with self._lock:
            left = [self.grace_s - (now - started) for started in self._jobs.values()]
        return max([0.0, *left])

    async def wait_for_change(self) -> None:
        """Block (no spinning) until a job finishes or the freshest one stops counting."""
        left = self.fresh_jobs()
        if left <= 0:
            return
        self._changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), left)
