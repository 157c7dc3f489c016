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
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

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
        if error is None:
            return
        if self._on_error is not None:
            self._on_error(task.get_name(), error)
        else:
            log.error("task %s failed", task.get_name(), exc_info=error)

    async def aclose(self) -> None:
        """Cancel every task and wait until all of them finished."""
        self._closed = True
        while self._tasks:
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
