"""How the simulator is served: the shared `WebServer` (uvicorn + Starlette inside the
caller's event loop) with the sim's own limits and WebSocket protocol, plus the TCP abort.

Why the shared server: the sim is embedded in tests, benchmarks and the demo, so it must not
install signal handlers, call ``sys.exit`` when a port is taken, or reconfigure logging —
what `vocalis.transports.web.WebServer` already does for the transports (its own socket, so
port 0 works and a bind error is an ordinary ``OSError``; TLS; an orderly stop). One
embedded uvicorn in the code base, not two.
"""

from __future__ import annotations

import ssl

from starlette.types import ASGIApp, Receive, Scope, Send

from vocalis.sim.direct_ws import DirectWebSocketProtocol
from vocalis.transports.web.limits import HttpLimits, default_pending_handshakes
from vocalis.transports.web.server import WebServer

MAX_FRAME_BYTES = 32 * 1024 * 1024  # a 15 MiB append is ~20 MiB of base64 JSON

ABORT_KEY = "vocalis.abort"
"""Scope key of a callable that drops the connection's TCP link at once (fault injection)."""


def sim_limits() -> HttpLimits:
    """A local test server's limits: real API frames can be large, and tests and benchmarks
    open many sessions from one address at once (a listener for anonymous peers, like
    `vocalis serve`'s, bounds that lower)."""
    return HttpLimits(
        max_message_bytes=MAX_FRAME_BYTES,
        handshakes_per_address=default_pending_handshakes(),
    )


async def serve(
    app: ASGIApp, host: str, port: int, *, ssl_context: ssl.SSLContext | None = None
) -> WebServer:
    """Serve the sim's `app` on `host:port` (0: any free port); TLS with `ssl_context`."""
    return await WebServer.start(
        _with_abort(app),
        host,
        port,
        limits=sim_limits(),
        ssl_context=ssl_context,
        # uvicorn's "websockets-sansio" protocol plus synchronous lanes (direct_ws.py).
        websocket=DirectWebSocketProtocol,
    )


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
            # Duck-typed: uvloop's transports have abort() but are not asyncio.Transport.
            abort = getattr(transport, "abort", None)
            if callable(abort):
                scope[ABORT_KEY] = abort
        await app(scope, receive, send)

    return wrapped
