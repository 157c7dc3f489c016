"""Run an ASGI app (Starlette) under uvicorn inside the caller's event loop.

Why not ``uvicorn.run``: the simulator is embedded in tests, benchmarks and the demo, so it
must not install signal handlers, call ``sys.exit`` when a port is taken, or reconfigure
logging. :class:`AsgiServer` binds the socket itself (so port 0 works and a bind error is an
ordinary ``OSError``), hands it to uvicorn, and stops it on request. TLS is optional.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Generator

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from vocalis.sim.direct_ws import DirectWebSocketProtocol

MAX_FRAME_BYTES = 32 * 1024 * 1024  # a 15 MiB append is ~20 MiB of base64 JSON
GRACEFUL_SHUTDOWN_S = 2


ABORT_KEY = "vocalis.abort"
"""Scope key of a callable that drops the connection's TCP link at once (fault injection)."""


def _with_abort(app: ASGIApp) -> ASGIApp:
    """Give every WebSocket scope an ``ABORT_KEY`` callable.

    Why: a simulated network drop must lose what is still buffered, like a real one, and
    ASGI can only close politely (returning from the app flushes the buffer first). uvicorn's
    ``send`` is a method of its protocol object, which holds the asyncio transport; when that
    is not the case (another server), the callable is absent and callers fall back to
    returning without a close frame.
    """

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            transport = getattr(getattr(send, "__self__", None), "transport", None)
            if isinstance(transport, asyncio.Transport):
                scope[ABORT_KEY] = transport.abort
        await app(scope, receive, send)

    return wrapped


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its process-wide signal handlers (the host process owns signals)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (IPv4 or IPv6 by the host's address family)."""
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    return socket.create_server((host, port), family=family, backlog=2048)


class AsgiServer:
    """One uvicorn server for ``app`` on ``host:port``; ``ssl_context`` enables TLS.

    ``await start()`` returns once it listens (``port`` is then the bound port); ``await
    stop()`` closes the listener, asks open connections to close (WebSockets get 1012) and
    waits up to :data:`GRACEFUL_SHUTDOWN_S` for their handlers.
    """

    def __init__(
        self,
        app: ASGIApp,
        host: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None = None,
        ws_ping_interval: float | None = 20.0,
    ) -> None:
        self.host = host
        self.port = port
        self._config = uvicorn.Config(
            _with_abort(app),
            lifespan="off",
            log_config=None,
            access_log=False,
            # uvicorn's "websockets-sansio" protocol plus synchronous lanes (direct_ws.py).
            ws=DirectWebSocketProtocol,
            ws_max_size=MAX_FRAME_BYTES,
            ws_per_message_deflate=False,
            ws_ping_interval=ws_ping_interval,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
            server_header=False,
        )
        self._ssl = ssl_context
        self._server: _EmbeddedServer | None = None
        self._socket: socket.socket | None = None
        self._main: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._socket = bind_socket(self.host, self.port)
        self.port = self._socket.getsockname()[1]
        config = self._config
        config.load()
        # Config.load builds its own context from files; the caller's context (already
        # checked, possibly in memory) wins.
        config.ssl = self._ssl
        server = _EmbeddedServer(config)
        server.lifespan = config.lifespan_class(config)
        await server.startup(sockets=[self._socket])
        self._server = server
        self._main = asyncio.create_task(server.main_loop(), name="vocalis-asgi-main")

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.should_exit = True
        if self._main is not None:
            await self._main
            self._main = None
        await server.shutdown(sockets=[self._socket] if self._socket is not None else None)
        self._socket = None
