"""A closable async channel.

Provider streams (a response's messages, each message's audio and text) must end *definitely*:
a consumer waiting on a stream whose producer died is exactly the "agent hangs in speaking"
bug. `Channel` makes ending explicit: the producer closes it (optionally with an error), and
every waiting consumer wakes up. Unbounded by design: producers are network readers that must
never block on a slow consumer (backpressure would stall the provider socket).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from typing import Generic, TypeVar

T = TypeVar("T")


class ChannelClosed(Exception):
    """Raised by `recv()` when the channel is closed and drained."""


class Channel(Generic[T]):
    __slots__ = ("_closed", "_error", "_items", "_waiter")

    def __init__(self) -> None:
        self._items: deque[T] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self._error: BaseException | None = None

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        return len(self._items)

    def send(self, item: T) -> None:
        """Queue an item; silently dropped after close (late events of a finished stream)."""
        if self._closed:
            return
        self._items.append(item)
        self._wake()

    def close(self, error: BaseException | None = None) -> None:
        """End the stream. Idempotent; the first error wins and is raised to consumers."""
        if self._closed:
            return
        self._closed = True
        self._error = error
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def try_recv(self) -> T | None:
        return self._items.popleft() if self._items else None

    async def recv(self) -> T:
        while not self._items:
            if self._closed:
                if self._error is not None:
                    raise self._error
                raise ChannelClosed
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.popleft()

    def __aiter__(self) -> AsyncIterator[T]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[T]:
        while True:
            try:
                item = await self.recv()
            except ChannelClosed:
                return
            yield item
