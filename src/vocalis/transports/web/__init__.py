"""The HTTP layer of the network endpoints: uvicorn + Starlette behind our connection limits.

A listener is a `WebServer` serving Starlette routes. Endpoints that start a call per
WebSocket use `call_route` (access rule → admission → `CallSocket`); plain pages and other
routes (a WebRTC offer, `/metrics`) are ordinary Starlette routes. Every request first passes
the connection limits (`HttpLimits`) and the head checks; see docs/deployment.md for sizing.
"""

from vocalis.transports.web.calls import (
    Authorize,
    CallSocket,
    ConnectionGate,
    Lease,
    SocketClosed,
    call_route,
    request_target,
)
from vocalis.transports.web.guard import deny
from vocalis.transports.web.headers import TrustedProxies, client_address
from vocalis.transports.web.limits import HttpLimits
from vocalis.transports.web.server import CallRegistry, WebServer

__all__ = [
    "Authorize",
    "CallRegistry",
    "CallSocket",
    "ConnectionGate",
    "HttpLimits",
    "Lease",
    "SocketClosed",
    "TrustedProxies",
    "WebServer",
    "call_route",
    "client_address",
    "deny",
    "request_target",
]
