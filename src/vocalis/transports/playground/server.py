"""`vocalis serve AGENT --playground`: one HTTP + WebSocket server on localhost.

Why it exists: the fastest way to *hear* an agent is a browser tab. The server hands out one
self-contained page (no external assets: the audio worklets are inlined) and accepts its
WebSocket; each connection runs `await on_call(transport)`.

Access control — the port is reachable by every local process and every web page the user
opens, and each call starts a paid realtime session:
- a random token is part of the printed URL (`/?token=...`); the page and the socket both
  require it (constant-time compare, never logged);
- the WebSocket must come from the page's own origin (`Origin` equal to `http://<Host>`), so
  another web site cannot drive the agent through the user's browser;
- inbound messages are bounded (socket frames by `max_message_bytes`, and each message type
  by the protocol in `transport.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources

from starlette.requests import HTTPConnection, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from vocalis.transports._web import (
    ConnectionGate,
    ServedEndpoint,
    new_token,
    serve_endpoint,
    split_token,
    token_ok,
)
from vocalis.transports.playground.transport import OnCall, handle_playground
from vocalis.transports.web import (
    Authorize,
    CallRegistry,
    CallSocket,
    HttpLimits,
    TrustedProxies,
    call_route,
    request_target,
)
from vocalis.utils.clock import Clock

__all__ = ["page_html", "playground_access", "serve_playground"]

MAX_MESSAGE_BYTES = 64 * 1024


def page_html() -> bytes:
    """The playground page (packaged next to this module)."""
    return resources.files("vocalis.transports.playground").joinpath("page.html").read_bytes()


def _html_response(body: bytes, host: str) -> Response:
    csp = (
        "default-src 'none'; script-src 'unsafe-inline' blob:; style-src 'unsafe-inline'; "
        f"connect-src 'self' ws://{host} wss://{host}; worker-src blob:; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    )
    headers = {
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": csp,
    }
    return Response(body, 200, headers, media_type="text/html; charset=utf-8")


def _origin_ok(connection: HTTPConnection) -> bool:
    origin = connection.headers.get("origin")
    host = connection.headers.get("host")
    return (
        origin is not None and host is not None and origin in (f"http://{host}", f"https://{host}")
    )


def playground_access(secret: str, *, same_origin: bool = True) -> Authorize:
    """The playground's access rule for a socket or a call-starting request: the URL's token
    (`?token=`), and — `same_origin` — an `Origin` equal to the page's own (`http(s)://Host`),
    so another web site cannot drive the agent through the user's browser."""

    def authorize(connection: HTTPConnection) -> Response | None:
        _route, given = split_token(request_target(connection), "/")
        if not token_ok(given, secret):
            return PlainTextResponse("Forbidden: missing or wrong token\n", 403)
        if same_origin and not _origin_ok(connection):
            return PlainTextResponse("Forbidden: cross-origin request refused\n", 403)
        return None

    return authorize


async def serve_playground(
    on_call: OnCall,
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    token: str | None = None,
    sample_rate: int = 24000,
    clock: Clock | None = None,
    max_message_bytes: int = MAX_MESSAGE_BYTES,
    gate: ConnectionGate | None = None,
    limits: HttpLimits | None = None,
    trusted: TrustedProxies | None = None,
    extra_routes: Sequence[BaseRoute] = (),
    page: bytes | None = None,
) -> ServedEndpoint:
    """Serve the playground page and its WebSocket; returns a handle with the URL to open.

    The URL contains the access token: print it for the user, never log it. `extra_routes`
    are served on the same origin (e.g. a WebRTC offer route guarded by `playground_access`);
    `page` replaces the packaged page (the WebRTC mode inlines its client into it).
    """
    secret = token or new_token()
    page = page or page_html()
    page_access = playground_access(secret, same_origin=False)

    async def index(request: Request) -> Response:
        if page_access(request) is not None:
            return PlainTextResponse(
                "Forbidden: open the URL printed by `vocalis serve` (it has ?token=)\n", 403
            )
        return _html_response(page, request.headers.get("host", f"{host}:{port}"))

    async def run(ws: CallSocket) -> None:
        await handle_playground(ws, on_call, sample_rate=sample_rate, clock=clock)

    def routes(calls: CallRegistry) -> list[BaseRoute]:
        return [
            Route("/", index, methods=["GET"]),
            Route("/index.html", index, methods=["GET"]),
            call_route("/ws", run, authorize=playground_access(secret), calls=calls, gate=gate),
        ]

    server = await serve_endpoint(
        routes,
        host,
        port,
        secret=secret,
        limits=limits or HttpLimits(max_message_bytes=max_message_bytes),
        gate=gate,
        trusted=trusted,
        extra_routes=extra_routes,
    )
    return ServedEndpoint(server, f"http://{server.authority}/?token={secret}", secret)
