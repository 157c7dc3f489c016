"""The HTTP face of the OpenAI dialect: JSON error responses and the 404 fallback.

Why a module: every HTTP answer of the simulator (a refused WebSocket handshake included) has
the real API's shape — ``{"error": {"message", "type", "param", "code"}}``, one
``Content-Type: application/json`` header, the standard reason phrase for its status — and the
404 text names the request's real method (``Invalid URL (POST /v1/x)``), as the real API does.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from vocalis.sim.errors import INVALID_REQUEST, RealtimeError


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
    return json_error(
        401,
        "You didn't provide an API key. You need to provide your API key in an "
        "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        code="missing_api_key",
    )


async def fallback(scope: Scope, receive: Receive, send: Send) -> None:
    """The router's default: a JSON 404 for HTTP, and for a WebSocket handshake alike."""
    if scope["type"] == "websocket":
        websocket = WebSocket(scope, receive, send)
        await websocket.send_denial_response(not_found("GET", scope["path"]))
        return
    if scope["type"] == "http":
        request = Request(scope, receive)
        await not_found(request.method, request.url.path)(scope, receive, send)
