"""One WebSocket to the provider: what waits to be written to it, and how it ended.

Discarded as a whole when it dies: events queued for a dead socket are never sent on the
next one (a stale `response.create` or `truncate` replayed into a fresh session would
corrupt it).

Every message is written synchronously while nothing waits ahead of it (the usual case: the
socket's write buffer has room). Only when the socket refuses one (its buffer is above
`WRITE_NOW_LIMIT`, or it is paused) does a backlog exist: a deque and one task writing it
as the socket drains, both gone once it is empty. Why not a queue and a send task per
socket: they would sit idle for the whole call (a task, a coroutine, a waiting future and a
queue of four deques, ~4 KB per session) to serve a case that almost never happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from vocalis.audio.frame import Int16Array
from vocalis.providers.base import ProviderError
from vocalis.providers.openai.appends import InputAppends
from vocalis.providers.wsclient import ProviderSocket, SocketClosed


class _Fatal(Exception):
    def __init__(self, error: ProviderError) -> None:
        super().__init__(error.message)
        self.error = error


@dataclass(eq=False)
class _Connection:
    """One socket and its backlog; discarded as a whole when it dies."""

    ws: ProviderSocket
    # Caller audio waiting to fill one append (None: every frame is its own append), and the
    # longest it may wait (real seconds) when no further frame comes to fill it.
    appends: InputAppends | None = None
    hold_s: float = 0.0
    # How long quiet audio held beyond a normal chunk may wait (from the partial's start).
    quiet_hold_s: float = 0.0
    _hold: asyncio.TimerHandle | None = field(default=None, init=False, repr=False)
    # Messages the socket refused, in order (None: nothing waits, write at once), and the
    # task writing them as the socket drains (exists only while the backlog does).
    _backlog: deque[str] | None = field(default=None, init=False, repr=False)
    _drain: asyncio.Task[None] | None = field(default=None, init=False, repr=False)
    ended: asyncio.Future[str] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    session_created: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    expired: bool = False
    fatal: ProviderError | None = None
    lost: bool = False
    # Set once configured and replayed; only a ready socket's mirror is worth replaying.
    ready: bool = False

    @property
    def alive(self) -> bool:
        return not self.ended.done()

    def end(self, reason: str) -> None:
        if self._hold is not None:
            self._hold.cancel()
            self._hold = None
        if not self.ended.done():
            self.ended.set_result(reason)

    def send_audio(self, samples: Int16Array) -> None:
        """Caller audio, batched by `appends`; nothing is written to a dead socket.

        Liveness is checked once per append, not per frame: frames given to a socket that
        died are only ever held in its partial chunk, which dies with it (`end` stops the
        hold timer and `flush_audio` checks again). A partial chunk is sent after `hold_s`
        at the latest: a source that pauses (a file that ended, push-to-talk) must not keep
        its last words from the provider's VAD.
        """
        appends = self.appends
        if appends is None:
            return
        message = appends.add(samples)
        if message is None:
            if self._hold is None and self.alive:
                self._hold = asyncio.get_running_loop().call_later(self.hold_s, self._held)
            return
        hold = self._hold
        if hold is not None:
            hold.cancel()
            self._hold = None
        self._send(message)

    def _held(self) -> None:
        """A partial chunk waited `hold_s`: send it, unless it is held as quiet — then it
        may wait until `quiet_hold_s` from the same start (`appends.py` says why)."""
        appends = self.appends
        if appends is not None and appends.holding_quiet and self.quiet_hold_s > self.hold_s:
            delay = self.quiet_hold_s - self.hold_s
            self._hold = asyncio.get_running_loop().call_later(delay, self.flush_audio)
            return
        self.flush_audio()

    def flush_audio(self) -> None:
        """Send the pending partial chunk now (before another event, or when held too long)."""
        if self._hold is not None:
            self._hold.cancel()
            self._hold = None
        if self.alive and self.appends is not None and (audio := self.appends.flush()):
            self._send(audio)

    def send_event(self, event: dict[str, Any]) -> None:
        if self.alive:
            self.flush_audio()  # audio that came first goes first
            self._send(json.dumps(event, separators=(",", ":")))

    def _send(self, message: str) -> None:
        """Write `message` now when nothing waits ahead of it, else after what does.

        Why synchronous: per append, a queue, a send task's wake-up and the library's async
        send cost more than the write itself (the largest item of the density profile).
        Order is kept: a message is written at once only while the backlog is empty.
        """
        if not self.alive:
            return
        backlog = self._backlog
        if backlog is None:
            try:
                if self.ws.write(message):
                    return
            except SocketClosed:  # a failing socket: end it; the session reconnects
                self.end("dropped")
                return
            backlog = self._backlog = deque()
            self._drain = asyncio.get_running_loop().create_task(
                self._write_backlog(backlog), name="openai-realtime-send"
            )
        backlog.append(message)

    async def _write_backlog(self, backlog: deque[str]) -> None:
        """Write the refused messages in order as the socket drains, then end (no task
        outlives its backlog)."""
        try:
            while backlog:
                await self.ws.send(backlog.popleft())
        except SocketClosed:
            self.end("session_expired" if self.expired else "dropped")
        finally:
            if self._backlog is backlog:
                self._backlog = None
                self._drain = None

    async def stop_sending(self) -> None:
        """Drop the backlog and stop the task writing it (the socket is being torn down:
        nothing queued for it may reach a later socket, nor this one once it ended)."""
        task, self._drain = self._drain, None
        self._backlog = None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
