"""The ASGI middleware in front of every route: head checks, client address, attempt limit.

Why it exists: these checks must run for every request of every listener — the playground,
Twilio, a WebRTC offer, the admin port — *before* any route reads a header or compares a
token, and they must answer the same way for plain HTTP and for WebSocket handshakes (a
refused handshake gets a real HTTP status with a short body, never an accepted socket that
is then closed). Routes stay unaware of them.

Order: head checks (431/501/400) → client address (trusted proxies) → the attempt limit
(429, skipped for health/metrics paths, which load balancers poll) → the route. Request bodies
are bounded (413) and each read of one is bounded in time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection

from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vocalis.transports.web.headers import TrustedProxies, check_request_head, client_address
from vocalis.transports.web.limits import HttpLimits

__all__ = ["AttemptCheck", "BodyTooLarge", "RequestGuard", "deny"]

# `attempt(client_address)`: None to let the request through, or the response refusing it.
AttemptCheck = Callable[[str], "Response | None"]

MAX_BODY_BYTES = 64 * 1024


class BodyTooLarge(Exception):
    """A request body went past the listener's bound."""


async def deny(
    scope: Scope,
    receive: Receive,
    send: Send,
    status: int,
    message: str,
    headers: dict[str, str] | None = None,
) -> None:
    """Answer `status` with a one-line body — for HTTP, and for a WebSocket handshake (as the
    HTTP response to the upgrade request, before any socket exists)."""
    response = PlainTextResponse(message + "\n", status, headers={"Cache-Control": "no-store"})
    for name, value in (headers or {}).items():
        response.headers[name] = value
    await response(scope, receive, send)


def _bounded_receive(receive: Receive, limit: int, timeout_s: float) -> Receive:
    received = 0

    async def bounded() -> Message:
        nonlocal received
        async with asyncio.timeout(timeout_s):
            message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise BodyTooLarge
        return message

    return bounded


class RequestGuard:
    """Wraps a listener's app (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        limits: HttpLimits,
        trusted: TrustedProxies,
        attempt: AttemptCheck | None = None,
        unlimited_paths: Collection[str] = (),
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self.app = app
        self.limits = limits
        self.trusted = trusted
        self.attempt = attempt
        self.unlimited_paths = frozenset(unlimited_paths)
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = scope["headers"]
        refusal = check_request_head(
            scope.get("method", "GET"),
            headers,
            max_headers=self.limits.max_headers,
            max_header_bytes=self.limits.max_header_bytes,
            target_bytes=len(scope.get("raw_path", b"")) + len(scope.get("query_string", b"")),
        )
        if refusal is not None:
            await deny(scope, receive, send, refusal.status, refusal.message)
            return
        peer = scope["client"][0] if scope.get("client") else ""
        client = client_address(peer, headers, self.trusted)
        scope = {**scope, "client": (client, 0)}
        if self.attempt is not None and scope["path"] not in self.unlimited_paths:
            answer = self.attempt(client)
            if answer is not None:
                await answer(scope, receive, send)
                return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        await self._http(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        length = next((v for n, v in scope["headers"] if n == b"content-length"), b"0")
        if not length.isdigit() or int(length) > self.max_body_bytes:
            await deny(scope, receive, send, 413, "Content Too Large")
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        bounded = _bounded_receive(receive, self.max_body_bytes, self.limits.header_timeout_s)
        try:
            await self.app(scope, bounded, tracking_send)
        except (BodyTooLarge, TimeoutError):
            if started:
                raise
            await deny(scope, receive, send, 413, "Content Too Large or too slow")
