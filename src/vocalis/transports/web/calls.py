"""Call routes: a WebSocket that is authorized, admitted, then handed to a call as a `CallSocket`.

Why it exists: every endpoint that starts a paid realtime session per connection (playground,
Twilio, later others) must refuse in the same order — the endpoint's own access rule (token,
origin) first, then the fleet's admission (capacity, draining), all as HTTP answers to the
upgrade request, before a socket or a session exists — and must give the slot back however
the call ends. `call_route` does that once. The call code sees a `CallSocket`: receive, send,
close once, and `SocketClosed` whatever way the peer went away.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.routing import BaseRoute, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketDisconnected

from vocalis.transports.web.server import CallRegistry

__all__ = [
    "Authorize",
    "CallSocket",
    "ConnectionGate",
    "Lease",
    "SocketClosed",
    "call_route",
    "request_target",
]

log = logging.getLogger("vocalis.transports.web")

# The endpoint's own access rule: None to go on, or the response refusing the request.
Authorize = Callable[[HTTPConnection], "Response | None"]


class Lease(Protocol):
    """A call's slot in the fleet worker (given back exactly once, however the call ends)."""

    def release(self) -> None: ...


class ConnectionGate(Protocol):
    """What a fleet worker adds to every listener (`vocalis.worker.Worker` is one)."""

    def admin_routes(self) -> Sequence[BaseRoute]:
        """Health/metrics routes served on every port (never attempt-limited)."""
        ...

    def check_attempt(self, client: str) -> Response | None:
        """Before any access rule: None, or a refusal (429) for a client trying too often."""
        ...

    def admit(self) -> Lease | Response:
        """After the access rule: a slot for the call, or a refusal (503 full / draining)."""
        ...

    def call_failed(self) -> None:
        """A call's handler raised (counted in the worker's metrics)."""
        ...


class SocketClosed(Exception):
    """The WebSocket is closed (by the peer, the network, or us)."""

    def __init__(self, code: int = 1006, reason: str = "") -> None:
        super().__init__(f"socket closed ({code})")
        self.code = code
        self.reason = reason


def request_target(connection: HTTPConnection) -> str:
    """The request's path with its query string (as the access rules parse it)."""
    query = connection.scope.get("query_string", b"")
    path: str = connection.scope["path"]
    return f"{path}?{query.decode('latin-1')}" if query else path


class CallSocket:
    """An accepted WebSocket as a call sees it: `recv()`, `send()`, `close()` (once)."""

    __slots__ = ("_closed", "_ws", "close_code")

    def __init__(self, ws: WebSocket) -> None:
        self._ws = ws
        self._closed = False
        # The close code the peer sent (or 1006), once it went away.
        self.close_code: int | None = None

    @property
    def connection(self) -> HTTPConnection:
        """The upgrade request (headers, client address, path)."""
        return self._ws

    @property
    def closed(self) -> bool:
        return self._closed or self.close_code is not None

    async def recv(self) -> str | bytes:
        """The next message; raises `SocketClosed` once the socket is closed."""
        try:
            message = await self._ws.receive()
        except (WebSocketDisconnected, RuntimeError):
            raise SocketClosed(self.close_code or 1006) from None
        if message["type"] == "websocket.disconnect":
            self.close_code = int(message.get("code", 1006))
            raise SocketClosed(self.close_code, message.get("reason") or "")
        text = message.get("text")
        if text is not None:
            return str(text)
        return bytes(message.get("bytes") or b"")

    def __aiter__(self) -> CallSocket:
        return self

    async def __anext__(self) -> str | bytes:
        try:
            return await self.recv()
        except SocketClosed:
            raise StopAsyncIteration from None

    async def send(self, data: str | bytes) -> None:
        if self.closed:
            raise SocketClosed(self.close_code or 1006)
        message = {"type": "websocket.send", "text": data} if isinstance(data, str) else None
        try:
            await self._ws.send(message or {"type": "websocket.send", "bytes": data})
        except (WebSocketDisconnect, WebSocketDisconnected, RuntimeError, OSError):
            self._closed = True
            raise SocketClosed(1006) from None

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Send a close frame (the reason is cut to fit one); later calls do nothing."""
        if self.closed:
            return
        self._closed = True
        reason = reason.encode("utf-8")[:120].decode("utf-8", "ignore")
        with contextlib.suppress(WebSocketDisconnect, WebSocketDisconnected, RuntimeError, OSError):
            await self._ws.close(code, reason)


def call_route(
    path: str,
    run: Callable[[CallSocket], Awaitable[None]],
    *,
    authorize: Authorize,
    calls: CallRegistry,
    gate: ConnectionGate | None = None,
) -> WebSocketRoute:
    """A WebSocket route at `path` whose accepted connections run `await run(socket)`.

    Refusals (from `authorize`, then the gate's admission) are HTTP responses to the upgrade
    request. Closing the server closes every running call with 1001 (going away).
    """

    async def endpoint(ws: WebSocket) -> None:
        refusal = authorize(ws)
        if refusal is None and gate is not None:
            admitted = gate.admit()
            lease: Lease | None = None
            if isinstance(admitted, Response):
                refusal = admitted
            else:
                lease = admitted
        else:
            lease = None
        if refusal is not None:
            await ws.send_denial_response(refusal)
            return
        socket = CallSocket(ws)

        async def going_away() -> None:
            await socket.close(1001, "server shutting down")

        calls.add(socket, going_away)
        try:
            await ws.accept()
            await run(socket)
        except Exception:
            if gate is not None:
                gate.call_failed()
            log.exception("call on %s failed", path.split("{", 1)[0])
        finally:
            calls.discard(socket)
            if lease is not None:
                lease.release()
            await socket.close()

    return WebSocketRoute(path, endpoint)
