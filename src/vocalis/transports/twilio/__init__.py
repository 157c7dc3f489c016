"""Twilio Media Streams: a telephony transport whose playback clock is Twilio's marks."""

from vocalis.transports.twilio.protocol import TwilioProtocolError, parse_message
from vocalis.transports.twilio.sink import TwilioAudioSink, TwilioSegment
from vocalis.transports.twilio.transport import (
    TwilioAudioSource,
    TwilioTransport,
    handle_stream,
    serve_twilio,
)

__all__ = [
    "TwilioAudioSink",
    "TwilioAudioSource",
    "TwilioProtocolError",
    "TwilioSegment",
    "TwilioTransport",
    "handle_stream",
    "parse_message",
    "serve_twilio",
]
