"""uvicorn's h11 protocol with the limits that must hold before a request head is parsed.

Why it exists: uvicorn bounds a request head's size (h11's buffer, answered with a generic 400)
but not the *time* a peer may take to send it, nor how many such connections one address may
hold. Those are what a slow-handshake flood exploits. This subclass books every connection
that is waiting for a request head in a `HandshakeBook` (per address, in total — the oldest is
dropped when the total is full), arms a head timer, and answers an oversized head with 431.
Everything after the head (routing, WebSocket upgrade, pipelining, HEAD without a body) is
uvicorn's and Starlette's own code.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, ClassVar

import h11
from uvicorn._types import ASGISendEvent
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState

from vocalis.transports.web.headers import TrustedProxies
from vocalis.transports.web.limits import Admit, HandshakeBook, HttpLimits

__all__ = ["ConnectionGuard", "GuardedH11Protocol", "QueuedWebSocketProtocol", "protocol_class"]

log = logging.getLogger("vocalis.transports.web")

# How long a listener stops accepting after it refused or evicted a connection.
ACCEPT_PAUSE_S = 0.05


class ConnectionGuard:
    """What every connection of one listener shares: the limits, the book and the counts."""

    def __init__(self, limits: HttpLimits, trusted: TrustedProxies) -> None:
        self.limits = limits
        self.trusted = trusted
        self.book: HandshakeBook[GuardedH11Protocol] = HandshakeBook(
            limits.handshakes_per_address, limits.max_pending_handshakes
        )
        # Connections closed before their head arrived, by reason (bounded set of keys).
        self.closed: dict[str, int] = {
            "per_address": 0,
            "evicted": 0,
            "head_timeout": 0,
            "head_too_large": 0,
        }

        # Set by the server once it listens: stops accepting for a moment (see `_pressure`).
        self.pause_accepting: Callable[[float], None] = lambda seconds: None

    def count(self, reason: str) -> None:
        self.closed[reason] += 1

    def pressure(self) -> None:
        """A connection was refused or evicted: accept nothing for a moment.

        Closing a flood's connections at once only makes its clients reconnect at once, and
        the accept/close churn then starves the event loop (health probes and running calls
        included). Pausing the accept lets new connections wait in the kernel's backlog —
        costing this process nothing — and slows a reconnecting flood to the pause rate.
        """
        self.pause_accepting(ACCEPT_PAUSE_S)


class GuardedH11Protocol(H11Protocol):
    """One HTTP connection; `guard` is set on the per-listener subclass (`protocol_class`)."""

    guard: ClassVar[ConnectionGuard]

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._head_timer: asyncio.TimerHandle | None = None

    # ------------------------------------------------------------------ head bookkeeping

    def _await_head(self) -> None:
        """Waiting for a request head (new connection, or the next one on keep-alive)."""
        guard = self.guard
        address = self.client[0] if self.client else ""
        verdict, evicted = guard.book.open(self, address, exempt=address in guard.trusted)
        if verdict is Admit.REFUSE_ADDRESS:
            guard.count("per_address")
            guard.pressure()
            self.transport.abort()
            return
        for victim in evicted:
            guard.count("evicted")
            victim._drop()
        if evicted:
            guard.pressure()
        self._head_timer = self.loop.call_later(guard.limits.header_timeout_s, self._head_timed_out)

    def _head_arrived(self) -> None:
        self.guard.book.done(self)
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _drop(self) -> None:
        self._head_arrived()
        self.transport.abort()

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self in self.guard.book:
            self.guard.count("head_timeout")
            self._drop()

    # ------------------------------------------------------------------ protocol overrides

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._head_arrived()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE and self._head_timer is not None:
            self._head_arrived()

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        # The WebSocket protocol takes the transport over; this object gets no more callbacks.
        self._head_arrived()
        super().handle_websocket_upgrade(event)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        idle = not self.transport.is_closing() and self.conn.their_state is h11.IDLE
        if idle and self._head_timer is None:
            self._await_head()

    def send_400_response(self, msg: str) -> None:
        # h11 refuses a head larger than its buffer (sized to `max_header_bytes`) with a
        # generic protocol error; say what it is.
        buffered = len(self.conn.trailing_data[0])
        if buffered >= self.guard.limits.max_header_bytes:
            self.guard.count("head_too_large")
            self._send_and_close(431, b"Request Header Fields Too Large\n")
            return
        self._send_and_close(400, b"Bad Request: malformed HTTP request\n")

    def _send_and_close(self, status: int, body: bytes) -> None:
        self._head_arrived()
        headers = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        try:
            self.transport.write(self.conn.send(h11.Response(status_code=status, headers=headers)))
            self.transport.write(self.conn.send(h11.Data(data=body)))
            self.transport.write(self.conn.send(h11.EndOfMessage()))
        except h11.LocalProtocolError:
            pass  # h11 already in an error state: just close
        self.transport.close()


def protocol_class(guard: ConnectionGuard) -> type[GuardedH11Protocol]:
    """A protocol class bound to one listener's guard (uvicorn instantiates it per connection)."""
    return type("ListenerH11Protocol", (GuardedH11Protocol,), {"guard": guard})


# Inbound WebSocket messages queued for the app before the socket stops being read.
WS_QUEUE = 8


class QueuedWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol, reading ahead up to `WS_QUEUE` messages, and quiet
    about refused handshakes.

    uvicorn stops reading the socket after *every* message until the app took it: two
    `epoll_ctl` calls per 20 ms audio frame, the largest share of what the move from
    websockets' own server cost per call (bench/ws_cpu.py). Pausing only when `WS_QUEUE`
    messages wait keeps the backpressure (at most `WS_QUEUE` × the message limit buffered per
    connection) without the per-message syscalls. Relies on uvicorn's `read_paused`/`queue`
    (pinned in uv.lock; tests/security covers the bound).
    """

    async def send(self, message: ASGISendEvent) -> None:
        await super().send(message)
        if message["type"] == "websocket.http.response.body" and not message.get("more_body"):
            # A refusal (403/429/503) answered the upgrade request: that *is* the handshake's
            # outcome. Without this uvicorn logs "returned without completing handshake" at
            # ERROR for every refused attempt — an unauthenticated peer could fill the log.
            self.handshake_complete = True

    def send_receive_event_to_app(self) -> None:
        if self.read_paused or self.queue.qsize() + 1 >= WS_QUEUE:
            super().send_receive_event_to_app()
            return
        self.read_paused = True  # room left: keep reading (the parent would pause here)
        try:
            super().send_receive_event_to_app()
        finally:
            self.read_paused = False
