"""A closable async channel.

Provider streams (a response's messages, each message's audio and text) must end *definitely*:
a consumer waiting on a stream whose producer died is exactly the "agent hangs in speaking"
bug. `Channel` makes ending explicit: the producer closes it (optionally with an error), and
every waiting consumer wakes up. Unbounded by design: producers are network readers that must
never block on a slow consumer (backpressure would stall the provider socket).

A consumer that can act on an item synchronously may `forward_to` a callback instead of
awaiting `recv()`: each `send()` then calls it directly, inside the producer's own callback.
That removes one event-loop task hop per item, which is what the realtime audio path needs
(provider's audio delta -> sink push without waiting for the playout task to be scheduled).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class ChannelClosed(Exception):
    """Raised by `recv()` when the channel is closed and drained."""


class Channel(Generic[T]):
    __slots__ = ("_closed", "_error", "_forward", "_items", "_on_close", "_waiter")

    def __init__(self) -> None:
        # Created by the first queued item: a forwarded channel never queues one, and an
        # empty deque costs 760 bytes (a session holds ~10 channels, #17).
        self._items: deque[T] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self._error: BaseException | None = None
        self._forward: Callable[[T], None] | None = None
        self._on_close: Callable[[], None] | None = None

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def error(self) -> BaseException | None:
        """The error the channel was closed with (None while open or closed cleanly)."""
        return self._error

    def __len__(self) -> int:
        items = self._items
        return len(items) if items is not None else 0

    def send(self, item: T) -> None:
        """Queue an item; silently dropped after close (late events of a finished stream)."""
        if self._closed:
            return
        forward = self._forward
        if forward is None:
            items = self._items
            if items is None:
                items = self._items = deque()
            items.append(item)
            self._wake()
            return
        try:  # `_deliver`, inlined: this is once per caller frame and per audio delta
            forward(item)
        except Exception as exc:
            self._fail(exc)

    def forward_to(self, callback: Callable[[T], None]) -> None:
        """Hand items to `callback` synchronously instead of queueing them.

        Items already queued are delivered first (order is preserved), then every later
        `send()` calls `callback` directly. The consumer learns about the end with
        `wait_closed()`. If `callback` raises, forwarding stops, the remaining items are
        dropped and the channel is closed with that error: the producer (a provider's
        receive loop) must never die because a consumer failed, and the consumer sees the
        error where it awaits the channel.
        """
        self._forward = callback
        items = self._items
        while items and self._forward is callback:
            self._deliver(callback, items.popleft())

    async def forward_until_closed(self, callback: Callable[[T], None]) -> None:
        """`forward_to(callback)` until the channel closes; raise its error, if any.

        When this returns or is cancelled (the consumer is gone), later items queue again
        instead of reaching a callback nobody answers for.
        """
        self.forward_to(callback)
        try:
            await self.wait_closed()
        finally:
            self.stop_forwarding()

    def stop_forwarding(self) -> None:
        """Queue items again (e.g. the consumer stopped); idempotent."""
        self._forward = None

    def _deliver(self, callback: Callable[[T], None], item: T) -> None:
        try:
            callback(item)
        except Exception as exc:
            self._fail(exc)

    def _fail(self, exc: Exception) -> None:
        """The forwarding consumer raised: stop forwarding, drop the rest, close with it."""
        self._forward = None
        self._items = None
        self.close(exc)

    async def wait_closed(self) -> None:
        """Wait until the channel is closed; raise its error, if any.

        Meant for a forwarding consumer, which never leaves items queued.
        """
        while not self._closed:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        if self._error is not None:
            raise self._error

    def on_close(self, callback: Callable[[], None]) -> None:
        """Call `callback` synchronously when the channel closes (at once if it is closed).

        A forwarding consumer learns about the end inside the producer's own callback, like
        it gets the items — no task hop between the end of one stream and what follows it.
        """
        if self._closed:
            callback()
        else:
            self._on_close = callback

    def close(self, error: BaseException | None = None) -> None:
        """End the stream. Idempotent; the first error wins and is raised to consumers."""
        if self._closed:
            return
        self._closed = True
        self._error = error
        self._wake()
        callback, self._on_close = self._on_close, None
        if callback is not None:
            callback()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def try_recv(self) -> T | None:
        items = self._items
        return items.popleft() if items else None

    async def recv(self) -> T:
        while True:
            items = self._items
            if items:
                return items.popleft()
            if self._closed:
                if self._error is not None:
                    raise self._error
                raise ChannelClosed
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def __aiter__(self) -> ChannelIterator[T]:
        return ChannelIterator(self)


class ChannelIterator(Generic[T]):
    """`aiter(channel)`: the channel's items until it closes (its error raised, if any).

    It names its channel, so a consumer handed only an `AsyncIterator` (a transport's typed
    messages) can `forward_to` the channel instead of keeping a task waiting on it for the
    whole call (#17).
    """

    __slots__ = ("channel",)

    def __init__(self, channel: Channel[T]) -> None:
        self.channel = channel

    def __aiter__(self) -> ChannelIterator[T]:
        return self

    async def __anext__(self) -> T:
        try:
            return await self.channel.recv()
        except ChannelClosed:
            raise StopAsyncIteration from None
