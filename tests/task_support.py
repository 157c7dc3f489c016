"""Which tasks the event loop creates: the runtime names every task it starts, so a test
can count a response's tasks through asyncio itself (no private attribute read)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine, Generator, Iterator
from typing import Any


@contextlib.contextmanager
def created_tasks() -> Iterator[list[asyncio.Task[Any]]]:
    """Every task the loop creates meanwhile (named once created: read names afterwards)."""
    loop = asyncio.get_running_loop()
    previous = loop.get_task_factory()
    tasks: list[asyncio.Task[Any]] = []

    def factory(
        loop: asyncio.AbstractEventLoop,
        coro: Coroutine[Any, Any, Any] | Generator[Any, None, Any],
        /,
        **kwargs: Any,
    ) -> asyncio.Future[Any]:
        task = asyncio.Task(coro, loop=loop, **kwargs)
        tasks.append(task)
        return task

    loop.set_task_factory(factory)
    try:
        yield tasks
    finally:
        loop.set_task_factory(previous)
