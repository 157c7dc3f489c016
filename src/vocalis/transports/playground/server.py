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

from importlib import resources

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from vocalis.transports._web import (
    ConnectionGate,
    ServedEndpoint,
    new_token,
    serve_endpoint,
    split_token,
    token_ok,
)
from vocalis.transports.playground.transport import OnCall, handle_playground
from vocalis.utils.clock import Clock

__all__ = ["page_html", "serve_playground"]

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
    headers = Headers(
        [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
            ("Referrer-Policy", "no-referrer"),
            ("X-Content-Type-Options", "nosniff"),
            ("Content-Security-Policy", csp),
        ]
    )
    return Response(200, "OK", headers, body)


def _origin_ok(request: Request) -> bool:
    origin = request.headers.get("Origin")
    host = request.headers.get("Host")
    return (
        origin is not None and host is not None and origin in (f"http://{host}", f"https://{host}")
    )


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
) -> ServedEndpoint:
    """Serve the playground page and its WebSocket; returns a handle with the URL to open.

    The URL contains the access token: print it for the user, never log it.
    """
    secret = token or new_token()
    page = page_html()

    def process_request(connection: ServerConnection, request: Request) -> Response | None:
        route, given = split_token(request.path, "/")
        if route == "ws":
            if not token_ok(given, secret):
                return connection.respond(403, "Forbidden: missing or wrong token\n")
            if not _origin_ok(request):
                return connection.respond(403, "Forbidden: cross-origin WebSocket refused\n")
            return None
        if route in ("", "index.html"):
            if not token_ok(given, secret):
                return connection.respond(
                    403, "Forbidden: open the URL printed by `vocalis serve` (it has ?token=)\n"
                )
            return _html_response(page, request.headers.get("Host", f"{host}:{port}"))
        return connection.respond(404, "Not found\n")

    async def handler(ws: ServerConnection) -> None:
        await handle_playground(ws, on_call, sample_rate=sample_rate, clock=clock)

    server, authority = await serve_endpoint(
        handler,
        process_request,
        host,
        port,
        secret=secret,
        logger_name="vocalis.transports.playground.ws",
        max_message_bytes=max_message_bytes,
        gate=gate,
    )
    return ServedEndpoint(server, f"http://{authority}/?token={secret}", secret)
