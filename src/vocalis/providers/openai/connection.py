"""One WebSocket to the provider: its send queue, its tasks, and how it ended.

Discarded as a whole when it dies: events queued for a dead socket are never sent on the
next one (a stale `response.create` or `truncate` replayed into a fresh session would
corrupt it).
"""

from __future__ import annotations

import asyncio
import json
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
    """One socket, its send queue and its tasks; discarded as a whole when it dies."""

    ws: ProviderSocket
    # Caller audio waiting to fill one append (None: every frame is its own append), and the
    # longest it may wait (real seconds) when no further frame comes to fill it.
    appends: InputAppends | None = None
    hold_s: float = 0.0
    # How long quiet audio held beyond a normal chunk may wait (from the partial's start).
    quiet_hold_s: float = 0.0
    _hold: asyncio.TimerHandle | None = field(default=None, init=False, repr=False)
    queue: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
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
        if self.alive and not self._write_now(message):
            self.queue.put_nowait(message)

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
            self.queue.put_nowait(audio)

    def _write_now(self, message: str) -> bool:
        """Write `message` to the socket synchronously when nothing is queued ahead of it.

        Why: per append, the queue, the send task's wake-up and the library's async send
        cost more than the write itself (the largest item of the density profile). Order is
        kept: nothing is queued, and the send task writes a message as soon as it takes it.
        False: queue it (something is ahead, the socket is not open, or its buffer is full:
        the send task waits for it to drain).
        """
        if not self.queue.empty():
            return False
        try:
            return self.ws.write(message)
        except SocketClosed:  # a failing socket: end it (as the send task would); it reconnects
            self.end("dropped")
            return True

    def send_event(self, event: dict[str, Any]) -> None:
        if self.alive:
            self.flush_audio()  # audio that came first goes first
            self.queue.put_nowait(json.dumps(event, separators=(",", ":")))
