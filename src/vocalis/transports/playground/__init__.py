"""Browser playground: a local page with microphone, page-clocked playback and live transcript."""

from vocalis.transports.playground.server import page_html, serve_playground
from vocalis.transports.playground.sink import PlaygroundAudioSink, PlaygroundSegment
from vocalis.transports.playground.transport import (
    PlaygroundProtocolError,
    PlaygroundTextSink,
    PlaygroundTransport,
    handle_playground,
)

__all__ = [
    "PlaygroundAudioSink",
    "PlaygroundProtocolError",
    "PlaygroundSegment",
    "PlaygroundTextSink",
    "PlaygroundTransport",
    "handle_playground",
    "page_html",
    "serve_playground",
]
