"""The HTTP face of the OpenAI dialect: JSON errors, the 404 fallback, the REST endpoints.

Why a module: every HTTP answer of the simulator (a refused WebSocket handshake included) has
the real API's shape — ``{"error": {"message", "type", "param", "code"}}``, one
``Content-Type: application/json`` header, the standard reason phrase for its status — and the
404 text names the request's real method (``Invalid URL (POST /v1/x)``), as the real API does.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from vocalis.sim.admission import MISSING_KEY, credential
from vocalis.sim.client_secrets import ClientSecretStore
from vocalis.sim.errors import INVALID_REQUEST, RealtimeError
from vocalis.sim.ids import IdFactory


def error_body(
    message: str,
    *,
    code: str | None = None,
    param: str | None = None,
    type: str = INVALID_REQUEST,
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def json_error(
    status: int,
    message: str,
    *,
    code: str | None = None,
    param: str | None = None,
    type: str = INVALID_REQUEST,
) -> Response:
    """An OpenAI-style JSON error response."""
    return JSONResponse(error_body(message, code=code, param=param, type=type), status)


def realtime_error_response(error: RealtimeError, status: int = 400) -> Response:
    """A validation error of a request body as the HTTP API reports it."""
    return json_error(status, error.message, code=error.code, param=error.param, type=error.type)


def not_found(method: str, path: str) -> Response:
    return json_error(404, f"Invalid URL ({method} {path})")


def missing_api_key() -> Response:
    return json_error(401, MISSING_KEY, code="missing_api_key")


async def fallback(scope: Scope, receive: Receive, send: Send) -> None:
    """The router's default: a JSON 404 for HTTP, and for a WebSocket handshake alike."""
    if scope["type"] == "websocket":
        websocket = WebSocket(scope, receive, send)
        await websocket.send_denial_response(not_found("GET", scope["path"]))
        return
    if scope["type"] == "http":
        request = Request(scope, receive)
        await not_found(request.method, request.url.path)(scope, receive, send)


CALLS_NOT_SUPPORTED = (
    "WebRTC and SIP calls (/v1/realtime/calls) are not supported by the local server "
    "(vocalis sim-server): connect a WebSocket to /v1/realtime instead."
)


async def calls_not_supported(request: Request) -> Response:
    """``/v1/realtime/calls[/…]``: a clear 501 until the local server speaks WebRTC."""
    if request.method != "POST":
        return not_found(request.method, request.url.path)
    return json_error(501, CALLS_NOT_SUPPORTED, code="not_supported_by_local_server")


def client_secrets_endpoint(
    store: ClientSecretStore, ids: IdFactory, *, require_auth: bool
) -> Callable[[Request], Awaitable[Response]]:
    """``POST /v1/realtime/client_secrets``: mint an ephemeral key (see client_secrets)."""

    async def endpoint(request: Request) -> Response:
        if request.method != "POST":
            return not_found(request.method, request.url.path)
        key = credential(request.headers.get("authorization"), request.headers.get("api-key"), ())
        if require_auth and key is None:
            return missing_api_key()
        raw = await request.body()
        try:
            body = json.loads(raw) if raw.strip() else None
        except (json.JSONDecodeError, UnicodeDecodeError):
            return json_error(400, "We could not parse the JSON body of your request.")
        try:
            return JSONResponse(store.create(body, session_id=ids.new("sess")))
        except RealtimeError as error:
            return realtime_error_response(error)

    return endpoint
