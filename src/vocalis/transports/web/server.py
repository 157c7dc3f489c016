"""`WebServer`: one listening port served by uvicorn, routed by Starlette, guarded by our limits.

Why uvicorn + Starlette: methods (405, HEAD without a body), request-head parsing and size
limits, pipelining, keep-alive timeouts and the WebSocket protocol are solved problems there;
the hand-written layer on websockets' `process_request` got several of them wrong. What is
ours is what neither does: the handshake book and head timer (`protocol.py`), the head checks,
trusted proxies and attempt limit (`guard.py`), secrets kept out of logs (below), and an
orderly close of running calls (`CallRegistry`).

Routes are plain Starlette routes, so any part can add one (a WebRTC offer, `/metrics`).
"""

from __future__ import annotations

import asyncio
import asyncio.base_events
import contextlib
import logging
import re
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable, Sequence
from types import TracebackType

import uvicorn
from starlette.applications import Starlette
from starlette.routing import BaseRoute
from starlette.types import ASGIApp
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from vocalis.transports.web.guard import AttemptCheck, RequestGuard
from vocalis.transports.web.headers import TrustedProxies
from vocalis.transports.web.limits import HttpLimits
from vocalis.transports.web.listeners import listening_socket
from vocalis.transports.web.protocol import (
    ConnectionGuard,
    QueuedWebSocketProtocol,
    protocol_class,
)

__all__ = ["CallRegistry", "SecretScrubber", "WebServer"]

_TOKEN_QUERY = re.compile(r"token=[^&\s\"']*")
# The loggers uvicorn writes request paths (and so URL tokens) to.
_UVICORN_LOGGERS = ("uvicorn.error", "uvicorn.access")
# Running calls get this long to end after being told the server closes.
_CLOSE_GRACE_S = 10.0


class SecretScrubber(logging.Filter):
    """Replaces every registered secret, and any `token=` query value, with `<token>`.

    Installed on uvicorn's loggers (they log each WebSocket handshake's path, which carries
    the endpoint token); a server registers its token while it runs.
    """

    def __init__(self) -> None:
        super().__init__()
        self._secrets: dict[str, int] = {}

    def add(self, secret: str) -> None:
        self._secrets[secret] = self._secrets.get(secret, 0) + 1

    def remove(self, secret: str) -> None:
        left = self._secrets.get(secret, 0) - 1
        if left > 0:
            self._secrets[secret] = left
        else:
            self._secrets.pop(secret, None)

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "<token>")
        return _TOKEN_QUERY.sub("token=<token>", text)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = str(record.msg)
        record.msg = self.scrub(message)
        record.args = None
        return True


SCRUBBER = SecretScrubber()
for _name in _UVICORN_LOGGERS:
    logging.getLogger(_name).addFilter(SCRUBBER)


class CallRegistry:
    """The closers of the calls a server runs, so closing the server ends them in order
    (1001 going away) instead of uvicorn's abrupt shutdown."""

    def __init__(self) -> None:
        self._closers: dict[object, Callable[[], Awaitable[None]]] = {}
        self._idle = asyncio.Event()
        self._idle.set()

    def add(self, key: object, closer: Callable[[], Awaitable[None]]) -> None:
        self._closers[key] = closer
        self._idle.clear()

    def discard(self, key: object) -> None:
        self._closers.pop(key, None)
        if not self._closers:
            self._idle.set()

    def __len__(self) -> int:
        return len(self._closers)

    async def close_all(self, grace_s: float) -> None:
        closers = list(self._closers.values())
        await asyncio.gather(*(closer() for closer in closers), return_exceptions=True)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace_s):
                await self._idle.wait()


class AcceptPause:
    """Stops a listening server from accepting for a moment (connections queue in the
    kernel's backlog meanwhile, at no cost to this process).

    asyncio has no public "pause accepting"; this does what its own accept loop does when it
    runs out of file descriptors (remove the listening socket's reader, start serving again
    later). It uses `Server._serving`/`_start_serving()` (stable since Python 3.7); on a loop
    or version without them it does nothing.
    """

    def __init__(self, server: asyncio.base_events.Server) -> None:
        self._server = server
        self._paused = False
        self._supported = hasattr(server, "_start_serving") and hasattr(server, "_serving")

    def __call__(self, seconds: float) -> None:
        server = self._server
        if self._paused or not self._supported or not server.is_serving():
            return
        loop = asyncio.get_running_loop()
        try:
            for sock in server.sockets:
                loop.remove_reader(sock.fileno())
        except (NotImplementedError, AttributeError, ValueError):
            self._supported = False
            return
        self._paused = True
        server._serving = False  # type: ignore[attr-defined]
        loop.call_later(seconds, self._resume)

    def _resume(self) -> None:
        self._paused = False
        if self._server.get_loop().is_closed() or not self._server.sockets:
            return
        self._server._start_serving()  # type: ignore[attr-defined]


def _uvicorn_config(
    app: RequestGuard,
    guard: ConnectionGuard,
    limits: HttpLimits,
    websocket: type[WebSocketsSansIOProtocol],
) -> uvicorn.Config:
    """uvicorn as an embedded library: our protocols and limits, no logging or lifespan of
    its own, no proxy-header trust (the guard decides that), no server header."""
    return uvicorn.Config(
        app,
        http=protocol_class(guard),
        ws=websocket,
        ws_max_size=limits.max_message_bytes,
        ws_per_message_deflate=False,
        lifespan="off",
        log_config=None,
        access_log=False,
        proxy_headers=False,
        server_header=False,
        timeout_keep_alive=max(1, round(limits.keep_alive_s)),
        h11_max_incomplete_event_size=limits.max_header_bytes,
        timeout_graceful_shutdown=5,
        # Connections accepted per loop turn: a flood cannot make one turn accept thousands.
        backlog=128,
    )


class WebServer:
    """A running listener. Use `await WebServer.start(routes, host, port, ...)`."""

    def __init__(
        self,
        server: uvicorn.Server,
        sock: socket.socket,
        guard: ConnectionGuard,
        calls: CallRegistry,
        secrets: Sequence[str],
    ) -> None:
        self._server = server
        self._sock = sock
        self.guard = guard
        self.calls = calls
        self._secrets = tuple(secrets)
        self._closed = asyncio.Event()
        self._closing: asyncio.Task[None] | None = None
        address = sock.getsockname()
        self.host: str = address[0]
        self.port: int = int(address[1])

    @classmethod
    async def start(
        cls,
        routes: Sequence[BaseRoute] | ASGIApp,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        limits: HttpLimits | None = None,
        trusted: TrustedProxies | None = None,
        attempt: AttemptCheck | None = None,
        unlimited_paths: Iterable[str] = (),
        secrets: Sequence[str] = (),
        calls: CallRegistry | None = None,
        ssl_context: ssl.SSLContext | None = None,
        websocket: type[WebSocketsSansIOProtocol] = QueuedWebSocketProtocol,
    ) -> WebServer:
        """Bind `host:port` (0: any free port) and serve `routes` — Starlette routes, or a
        whole ASGI app (e.g. a `Router` with its own fallback) — behind the guards; in a
        worker of a pool, the supervisor's inherited socket for `host:port` is used instead
        (`listeners.adopt`).

        `secrets` (endpoint tokens) are scrubbed from uvicorn's log lines while this runs;
        `calls` is the registry the call routes of `routes` register with; `ssl_context`
        serves TLS (https/wss) on the port; `websocket` is uvicorn's WebSocket protocol class
        (the sim's has synchronous lanes, `sim/direct_ws.py`).
        """
        limits = limits or HttpLimits()
        trusted = trusted or TrustedProxies()
        guard = ConnectionGuard(limits, trusted)
        app = RequestGuard(
            Starlette(routes=list(routes)) if isinstance(routes, Sequence) else routes,
            limits=limits,
            trusted=trusted,
            attempt=attempt,
            unlimited_paths=frozenset(unlimited_paths),
        )
        config = _uvicorn_config(app, guard, limits, websocket)
        sock = listening_socket(host, port)
        config.load()
        # `Config.load` builds its own context from files; the caller's (already checked,
        # possibly in memory) wins.
        config.ssl = ssl_context
        server = uvicorn.Server(config)
        # `Server.serve()` would set these up; `startup()` alone (our own socket, no signal
        # handlers, no polling main loop) needs them set here.
        server.lifespan = config.lifespan_class(config)
        server.server_state.default_headers = list(config.encoded_headers)
        for secret in secrets:
            SCRUBBER.add(secret)
        try:
            await server.startup(sockets=[sock])
        except BaseException:
            for secret in secrets:
                SCRUBBER.remove(secret)
            sock.close()
            raise
        guard.pause_accepting = AcceptPause(server.servers[0])
        registry = calls if calls is not None else CallRegistry()
        return cls(server, sock, guard, registry, secrets)

    @property
    def authority(self) -> str:
        """`host:port` as it goes in a URL (IPv6 hosts in brackets)."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def close(self) -> None:
        """Start closing (idempotent): no new connections, running calls told to end."""
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(self._close())

    async def _close(self) -> None:
        try:
            for server in self._server.servers:
                server.close()
            await self.calls.close_all(_CLOSE_GRACE_S)
            await self._server.shutdown()
        finally:
            self._sock.close()
            for secret in self._secrets:
                SCRUBBER.remove(secret)
            self._closed.set()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    async def aclose(self) -> None:
        self.close()
        await self.wait_closed()

    async def serve_forever(self) -> None:
        """Until closed (cancel, or `close()` from elsewhere)."""
        await self.wait_closed()

    async def __aenter__(self) -> WebServer:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
