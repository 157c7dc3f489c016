"""HTTP for WebRTC: the `POST /webrtc/offer` route and the page's client script.

Why it exists: signalling is one HTTP request — the page POSTs its SDP offer and receives the
answer — so it mounts as one Starlette route on the listener `vocalis serve` already runs
(the playground's), behind the same access rule (the URL's token, the page's own Origin) and
the fleet's admission. The admitted slot then belongs to the call, not to the request: the
route hands its lease to the endpoint, which gives it back when the call tears down.
"""

from __future__ import annotations

import html
import json
from importlib import resources

from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from vocalis.transports.playground.server import playground_access
from vocalis.transports.web import Authorize, ConnectionGate
from vocalis.transports.webrtc.endpoint import MAX_OFFER_BYTES, OfferRefused, WebRTCEndpoint

__all__ = ["OFFER_PATH", "client_script", "offer_route", "webrtc_access", "with_webrtc_client"]

OFFER_PATH = "/webrtc/offer"
# The JSON envelope around the SDP, escaped characters included.
_MAX_BODY_BYTES = 2 * MAX_OFFER_BYTES


def client_script() -> str:
    """The page's WebRTC client (`client.js`, packaged next to this module)."""
    return resources.files("vocalis.transports.webrtc").joinpath("client.js").read_text("utf-8")


def with_webrtc_client(page: bytes, endpoint: WebRTCEndpoint) -> bytes:
    """The playground page with the WebRTC client inlined (the page then calls over WebRTC).

    Inline keeps the page one self-contained file under its CSP (`script-src 'unsafe-inline'`,
    fetch to 'self'); the client's configuration (ICE servers, offer path) rides in a data
    attribute. TURN credentials given to `vocalis serve` reach every holder of the page's token,
    so use short-lived ones.
    """
    config = json.dumps(
        {"offerPath": OFFER_PATH, "iceServers": [s.to_browser() for s in endpoint.ice_servers]},
        separators=(",", ":"),
    )
    script = client_script().replace("</script", "<\\/script")
    tag = f'<script data-config="{html.escape(config, quote=True)}">\n{script}</script>\n'
    head, marker, tail = page.rpartition(b"</body>")
    if not marker:
        raise ValueError("the page has no </body>")
    return head + tag.encode("utf-8") + marker + tail


def webrtc_access(secret: str) -> Authorize:
    """Who may post an offer: the URL's token, and — when the request carries an `Origin`
    (a browser) — the page's own origin, so another web site cannot start calls through the
    user's browser. Native apps send no `Origin` and need only the token."""
    token_rule = playground_access(secret, same_origin=False)

    def authorize(connection: HTTPConnection) -> Response | None:
        refusal = token_rule(connection)
        if refusal is not None:
            return refusal
        origin = connection.headers.get("origin")
        host = connection.headers.get("host")
        if origin is not None and origin not in (f"http://{host}", f"https://{host}"):
            return PlainTextResponse("Forbidden: cross-origin request refused\n", 403)
        return None

    return authorize


async def _read_body(request: Request) -> bytes | None:
    """The request body, or None beyond `_MAX_BODY_BYTES` (never read past the limit)."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > _MAX_BODY_BYTES):
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_BODY_BYTES:
            return None
    return bytes(body)


def offer_route(
    endpoint: WebRTCEndpoint,
    *,
    authorize: Authorize,
    gate: ConnectionGate | None = None,
    path: str = OFFER_PATH,
) -> Route:
    """`POST path`: access rule, then admission, then the endpoint's answer (JSON)."""

    async def offer(request: Request) -> Response:
        refusal = authorize(request)
        if refusal is not None:
            return refusal
        body = await _read_body(request)
        if body is None:
            return PlainTextResponse(f"the offer exceeds {MAX_OFFER_BYTES} bytes\n", 413)
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            return PlainTextResponse("the body must be a JSON offer\n", 400)
        lease = None
        if gate is not None:
            admitted = gate.admit()
            if isinstance(admitted, Response):
                return admitted
            lease = admitted
        try:
            answer = await endpoint.answer(
                data,
                on_end=None if lease is None else lease.release,
                on_failure=None if gate is None else gate.call_failed,
            )
        except OfferRefused as exc:
            if lease is not None:
                lease.release()
            return PlainTextResponse(exc.message + "\n", exc.status)
        return JSONResponse(answer, headers={"Cache-Control": "no-store"})

    return Route(path, offer, methods=["POST"])
