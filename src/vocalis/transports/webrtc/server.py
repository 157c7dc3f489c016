"""`vocalis serve AGENT --webrtc`: the playground page, calling over WebRTC.

Why it exists: the WebSocket playground is fine on localhost, but real networks lose and
reorder packets; WebRTC brings a jitter buffer, Opus and the browser's echo canceller. This
serves the same page (with the WebRTC client inlined) on the playground's listener and adds
`POST /webrtc/offer` behind the same access rule (URL token, the page's own Origin) and the
fleet's admission. Media then flows on UDP between the browser and aiortc (ICE host
candidates, plus STUN/TURN ones when `ice_servers` are given).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from vocalis.transports._web import ServedEndpoint, new_token
from vocalis.transports.base import Transport
from vocalis.transports.playground.server import page_html, serve_playground
from vocalis.transports.web import ConnectionGate, HttpLimits, TrustedProxies
from vocalis.transports.webrtc.endpoint import IceServer, WebRTCEndpoint, WebRTCLimits
from vocalis.transports.webrtc.routes import offer_route, webrtc_access, with_webrtc_client
from vocalis.utils.clock import Clock

__all__ = ["WebRTCServed", "serve_webrtc"]


class WebRTCServed(ServedEndpoint):
    """The running page + offer listener; closing it also hangs up every WebRTC call."""

    def __init__(self, served: ServedEndpoint, endpoint: WebRTCEndpoint) -> None:
        super().__init__(served.server, served.url, served.token)
        self.endpoint = endpoint

    async def aclose(self) -> None:
        await self.endpoint.aclose()
        await super().aclose()


async def serve_webrtc(
    on_call: Callable[[Transport], Awaitable[None]],
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    token: str | None = None,
    ice_servers: tuple[IceServer, ...] = (),
    limits: WebRTCLimits | None = None,
    clock: Clock | None = None,
    gate: ConnectionGate | None = None,
    http_limits: HttpLimits | None = None,
    trusted: TrustedProxies | None = None,
) -> WebRTCServed:
    """Serve the playground page over WebRTC; returns a handle with the URL to open.

    The URL carries the access token (print it, never log it). `on_call(transport)` runs per
    call: a `WebRTCTransport`, or a `PlaygroundTransport` for a client that uses the page's
    WebSocket route (still served).
    """
    secret = token or new_token()
    endpoint = WebRTCEndpoint(on_call, ice_servers=ice_servers, limits=limits, clock=clock)
    route = offer_route(endpoint, authorize=webrtc_access(secret), gate=gate)

    served = await serve_playground(
        on_call,  # a client that opens the call WebSocket still gets a (WebSocket) call
        host,
        port,
        token=secret,
        gate=gate,
        limits=http_limits,
        trusted=trusted,
        extra_routes=[route],
        page=with_webrtc_client(page_html(), endpoint),
    )
    return WebRTCServed(served, endpoint)
