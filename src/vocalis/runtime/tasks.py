"""Owned background tasks.

Every task the runtime starts has an owner that tracks it, reports its failure and cancels and
awaits it on close — so `AgentSession.aclose()` can promise that nothing it started is still
running (no orphaned "Task was destroyed but it is pending", no callbacks firing into a closed
transport). A plain `asyncio.TaskGroup` would cancel the whole session when one helper task
fails; a voice session must instead survive a failed tool or a rejected provider call, so
failures are reported to `on_error` and the siblings keep running.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from vocalis.utils.clock import Clock, MonotonicClock

T = TypeVar("T")

log = logging.getLogger(__name__)


class TaskOwner:
    """A set of tasks with one owner: spawn, report failures, cancel-and-wait on close."""

    def __init__(
        self, name: str, on_error: Callable[[str, BaseException], None] | None = None
    ) -> None:
        self._name = name
        self._tasks: set[asyncio.Task[Any]] = set()
        self._on_error = on_error
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, coro: Coroutine[Any, Any, T], name: str) -> asyncio.Task[T]:
        """Start `coro` as a task this owner waits for (refused after close)."""
        if self._closed:
            coro.close()
            raise RuntimeError(f"{self._name} is closed; cannot start {name}")
        task = asyncio.get_running_loop().create_task(coro, name=f"{self._name}:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            self._failed(task.get_name(), error)

    def report(self, name: str, error: BaseException) -> None:
        """Report the failure of work done for this owner in a callback instead of a task
        (`name` as a task would be named): reported like a failed task."""
        self._failed(f"{self._name}:{name}", error)

    def _failed(self, name: str, error: BaseException) -> None:
        if self._on_error is not None:
            self._on_error(name, error)
        else:
            log.error("task %s failed", name, exc_info=error)

    async def aclose(self) -> None:
        """Cancel every task and wait until all of them finished.

        Callable from one of the owned tasks (a session closing itself on a fatal provider
        error): that task is skipped and finishes on its own right after.
        """
        self._closed = True
        current = asyncio.current_task()
        while self._tasks - {current}:
            tasks = [task for task in self._tasks if task is not current]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def wait_for(awaitable: Awaitable[Any], clock: Clock, seconds: float | None) -> bool:
    """Wait for `awaitable` at most `seconds` of `clock` time; True if it finished.

    Timeouts run on the session clock (not `asyncio.timeout`) so tests on a `ManualClock`
    decide when a watchdog fires. A future passed in is left alone on timeout (only our wait
    ends); a coroutine passed in is wrapped in a task that is cancelled on timeout. No helper
    task outlives the call.
    """
    owned = not asyncio.isfuture(awaitable)
    target = asyncio.ensure_future(awaitable)
    if seconds is None:
        await asyncio.shield(target) if not owned else await target
        return True
    if target.done():
        return _outcome(target)
    if type(clock) is MonotonicClock:
        try:
            await _race_loop_timer(target, seconds)
        finally:
            if owned and not target.done():
                target.cancel()
                await asyncio.gather(target, return_exceptions=True)
        return _outcome(target)
    sleeper = asyncio.ensure_future(clock.sleep(seconds))
    waiter = asyncio.ensure_future(asyncio.shield(target))
    try:
        await asyncio.wait({waiter, sleeper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        helpers = [waiter, sleeper]
        if owned and not target.done():
            helpers.append(target)
        for task in helpers:
            task.cancel()
        await asyncio.gather(*helpers, return_exceptions=True)
    return _outcome(target)


def _outcome(target: asyncio.Future[Any]) -> bool:
    """True if `target` finished (its error raised); False if it is pending or cancelled."""
    if not target.done() or target.cancelled():
        return False
    error = target.exception()
    if error is not None:
        raise error
    return True


async def _race_loop_timer(target: asyncio.Future[Any], seconds: float) -> None:
    """Wait until `target` is done or `seconds` passed, on the event loop's own timer.

    Why: the general path (a sleeper task, a shielded waiter, `asyncio.wait`, a gather) costs
    two tasks and four futures per wait, and every response waits several times (watchdog,
    end of the response), at the same moment for every session that finishes together. On
    the real clock one future and one timer handle do. Cancelling the wait leaves `target`
    alone; the caller cancels it if it owns it.
    """
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[None] = loop.create_future()

    def wake(_done: object = None) -> None:
        if not waiter.done():
            waiter.set_result(None)

    timer = loop.call_later(max(0.0, seconds), wake)
    target.add_done_callback(wake)
    try:
        await waiter
    finally:
        timer.cancel()
        target.remove_done_callback(wake)
