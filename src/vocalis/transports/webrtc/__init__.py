"""WebRTC transport (aiortc, the `webrtc` extra): browsers and apps over real networks.

Opus both ways, ICE (host candidates; STUN/TURN configurable), one data channel for text,
events and playout reports. The browser's receiver is the playback clock: the page reports
the RTP timestamp of the last frame it played from a real packet, and the sink settles each
message `full / partial(ms) / skipped` from it (`timeline` holds that rule, sans-I/O).
"""

from vocalis.transports.webrtc.endpoint import (
    IceServer,
    OfferRefused,
    WebRTCEndpoint,
    WebRTCLimits,
)
from vocalis.transports.webrtc.routes import (
    OFFER_PATH,
    offer_route,
    webrtc_access,
    with_webrtc_client,
)
from vocalis.transports.webrtc.server import WebRTCServed, serve_webrtc
from vocalis.transports.webrtc.sink import WebRTCAudioSink, WebRTCSegment
from vocalis.transports.webrtc.transport import WebRTCProtocolError, WebRTCTransport

__all__ = [
    "OFFER_PATH",
    "IceServer",
    "OfferRefused",
    "WebRTCAudioSink",
    "WebRTCEndpoint",
    "WebRTCLimits",
    "WebRTCProtocolError",
    "WebRTCSegment",
    "WebRTCServed",
    "WebRTCTransport",
    "offer_route",
    "serve_webrtc",
    "webrtc_access",
    "with_webrtc_client",
]
