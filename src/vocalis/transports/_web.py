"""Shared bits of the network transports: tokens, serving, and one call's socket lifetime.

Why it exists: both endpoints (browser playground, Twilio) are reachable from the network and
start a paid realtime session per connection, so each requires a random token in its URL; the
check is constant-time and the token never appears in a log line or an error message. Both
also run a call the same way — a reader task applying inbound messages (a protocol violation
closes with 1008), a writer task draining the `Outbox`, and a teardown that flushes what the
call queued (a goodbye, a `clear`) before closing — so that lives here once (`run_socket_call`,
`serve_endpoint`), and each endpoint keeps only its own protocol and access rules. The HTTP
layer under them (uvicorn + Starlette, connection limits) is `vocalis.transports.web`.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import hmac
import logging
import secrets
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from urllib.parse import parse_qs, urlsplit

from starlette.routing import BaseRoute

from vocalis.transports.base import Transport
from vocalis.transports.web import (
    CallRegistry,
    CallSocket,
    ConnectionGate,
    HttpLimits,
    SocketClosed,
    TrustedProxies,
    WebServer,
)
from vocalis.utils.flag import Flag

__all__ = [
    "ConnectionGate",
    "Outbox",
    "ServedEndpoint",
    "SocketTransport",
    "new_token",
    "run_socket_call",
    "serve_endpoint",
    "split_token",
    "token_ok",
]


def new_token() -> str:
    """A URL-safe random token (128 bits)."""
    return secrets.token_urlsafe(16)


def split_token(request_path: str, base: str) -> tuple[str | None, str | None]:
    """(route below `base`, token) of a request path `base/<token>[/route]` or `base?token=`.

    Returns (None, None) when the path is not under `base`.
    """
    parts = urlsplit(request_path)
    path = parts.path
    base = base.rstrip("/")
    if path != base and not path.startswith(base + "/"):
        return None, None
    rest = path[len(base) :].strip("/")
    query_token = parse_qs(parts.query).get("token", [None])[0]
    if query_token is not None:
        return rest, query_token
    if not rest:
        return "", None
    token, _, route = rest.partition("/")
    return route, token


def token_ok(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


class ServedEndpoint:
    """A running endpoint: its URL (with the token — print it, never log it) and lifetime."""

    def __init__(self, server: WebServer, url: str, token: str) -> None:
        self.server = server
        self.url = url
        self.token = token

    @property
    def port(self) -> int:
        return self.server.port

    async def serve_forever(self) -> None:
        await self.server.serve_forever()

    def close(self) -> None:
        self.server.close()

    async def aclose(self) -> None:
        await self.server.aclose()

    async def __aenter__(self) -> ServedEndpoint:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class Outbox:
    """Messages waiting for a socket writer task; queued media can be purged on barge-in.

    Producers (audio sinks) are synchronous and must never block on the network, so they
    append here and one writer task per connection drains the queue in order.
    """

    def __init__(self) -> None:
        self._items: deque[str | bytes] = deque()
        self._event = asyncio.Event()
        self.closed = False

    def send(self, message: str | bytes) -> None:
        if not self.closed:
            self._items.append(message)
            self._event.set()

    def purge(self, *, binary_only: bool = False) -> int:
        """Drop messages not yet written (audio that would play after a clear).

        `binary_only` keeps text messages (transcripts, states) and drops binary audio.
        """
        before = len(self._items)
        if binary_only:
            self._items = deque(m for m in self._items if isinstance(m, str))
        else:
            self._items.clear()
        return before - len(self._items)

    def close(self) -> None:
        self.closed = True
        self._event.set()

    def __len__(self) -> int:
        return len(self._items)

    async def next_batch(self) -> list[str | bytes] | None:
        """Wait for messages; None once closed and drained."""
        while not self._items:
            if self.closed:
                return None
            self._event.clear()
            await self._event.wait()
        batch = list(self._items)
        self._items.clear()
        return batch


# How long the teardown waits for the writer to flush what the call queued.
_FLUSH_TIMEOUT_S = 5.0


class SocketTransport(Transport):
    """A call over one WebSocket: the writer's `Outbox` and the hang-up signal.

    Subclasses release their own parts in `_on_hang_up()` (close the caller audio, resolve
    the sink from what the far end reported); `hang_up()` is idempotent.
    """

    def __init__(self) -> None:
        self.outbox = Outbox()
        self._hung_up = Flag()

    @abc.abstractmethod
    def _on_hang_up(self) -> None:
        """The call is over: end the caller audio and resolve every pending segment."""

    def hang_up(self) -> None:
        """The call ended (the caller hung up, or the socket closed)."""
        self._on_hang_up()
        self._hung_up.set()

    @property
    def hung_up(self) -> bool:
        return self._hung_up.is_set()

    async def wait_closed(self) -> None:
        await self._hung_up.wait()


async def _write(ws: CallSocket, outbox: Outbox) -> None:
    while (batch := await outbox.next_batch()) is not None:
        for message in batch:
            await ws.send(message)


async def _read(
    ws: CallSocket,
    call: SocketTransport,
    handle: Callable[[str | bytes], None],
    protocol_error: type[Exception],
    log: logging.Logger,
    label: str,
) -> None:
    try:
        async for raw in ws:
            handle(raw)
            if call.hung_up:
                return
    except protocol_error as exc:
        log.warning("%s: closing on protocol error: %s", label, exc)
        await ws.close(1008, str(exc)[:120])
    finally:
        call.hang_up()


async def run_socket_call(
    ws: CallSocket,
    call: SocketTransport,
    handle: Callable[[str | bytes], None],
    body: Callable[[], Awaitable[None]],
    *,
    protocol_error: type[Exception],
    log: logging.Logger,
    label: str,
) -> None:
    """Run one call on `ws`: read with `handle`, write the outbox, `await body()`, tear down.

    `handle` applies one inbound message and raises `protocol_error` on a violation (the
    socket closes with 1008 and a short reason; the label, never the token, is logged). When
    `body` returns or fails, what the call queued is flushed (bounded), both tasks end, the
    call is hung up and the socket closed — nothing outlives the connection.
    """
    reader = asyncio.create_task(
        _read(ws, call, handle, protocol_error, log, label), name=f"{label}-read"
    )
    writer = asyncio.create_task(_write(ws, call.outbox), name=f"{label}-write")
    try:
        await body()
    finally:
        call.outbox.close()
        with contextlib.suppress(SocketClosed, TimeoutError):
            async with asyncio.timeout(_FLUSH_TIMEOUT_S):
                await writer
        writer.cancel()
        reader.cancel()
        for task in (reader, writer):
            with contextlib.suppress(asyncio.CancelledError, SocketClosed):
                await task
        call.hang_up()
        await ws.close()


RouteBuilder = Callable[[CallRegistry], Sequence[BaseRoute]]


async def serve_endpoint(
    build_routes: RouteBuilder,
    host: str,
    port: int,
    *,
    secret: str,
    limits: HttpLimits,
    gate: ConnectionGate | None = None,
    trusted: TrustedProxies | None = None,
    extra_routes: Sequence[BaseRoute] = (),
) -> WebServer:
    """Start a token-guarded listener: the endpoint's routes, `extra_routes`, and — with a
    `gate` (a fleet worker) — its admin routes, attempt limit and admission.

    `build_routes(calls)` makes the endpoint's routes; its call routes register with `calls`
    so closing the server ends them in order. The token is scrubbed from the server's logs.
    """
    calls = CallRegistry()
    admin = list(gate.admin_routes()) if gate is not None else []
    return await WebServer.start(
        [*build_routes(calls), *extra_routes, *admin],
        host,
        port,
        limits=limits,
        trusted=trusted,
        attempt=gate.check_attempt if gate is not None else None,
        unlimited_paths=[getattr(route, "path", "") for route in admin],
        secrets=[secret],
        calls=calls,
    )
