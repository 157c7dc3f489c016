"""Twilio Media Streams endpoint: one `Transport` per phone call over a WebSocket.

Why it exists: telephony is where voice agents are deployed; Twilio connects a call's audio to
a WebSocket (`<Connect><Stream url="wss://host/twilio/TOKEN"/></Connect>`). This module accepts
that socket, checks the token, validates the stream (`connected` → `start` with μ-law 8 kHz
mono), and hands the application a `TwilioTransport`: caller audio decoded and resampled at
the edge, agent audio through `TwilioAudioSink` (played position from marks).

Twilio does not support query strings in the Stream URL, so the token goes in the path
(`/twilio/<token>`); `?token=` is accepted too for other Media-Streams-compatible clients.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from starlette.requests import HTTPConnection
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute

from vocalis.audio.g711 import ulaw_decode
from vocalis.transports._source import FixedRateAudioSource
from vocalis.transports._web import (
    ConnectionGate,
    ServedEndpoint,
    SocketTransport,
    new_token,
    run_socket_call,
    serve_endpoint,
    split_token,
    token_ok,
)
from vocalis.transports.base import CallInfo
from vocalis.transports.pacing import AudioPacer, admit_audio
from vocalis.transports.twilio.protocol import (
    MAX_MESSAGE_BYTES,
    Connected,
    Dtmf,
    Mark,
    Media,
    Start,
    Stop,
    TwilioProtocolError,
    parse_message,
)
from vocalis.transports.twilio.sink import TWILIO_RATE, TwilioAudioSink
from vocalis.transports.web import (
    CallRegistry,
    CallSocket,
    HttpLimits,
    SocketClosed,
    TrustedProxies,
    call_route,
    request_target,
)
from vocalis.utils.clock import Clock, MonotonicClock

__all__ = ["OnCall", "TwilioAudioSource", "TwilioTransport", "handle_stream", "serve_twilio"]

log = logging.getLogger("vocalis.transports.twilio")

OnCall = Callable[["TwilioTransport"], Awaitable[None]]

START_TIMEOUT_S = 10.0


class TwilioAudioSource(FixedRateAudioSource):
    """Caller audio: μ-law 8 kHz payloads decoded, resampled to the consumer's rate."""

    def __init__(self) -> None:
        super().__init__(TWILIO_RATE)
        self.received_samples = 0

    def feed(self, ulaw: bytes) -> None:
        pcm = ulaw_decode(ulaw)
        self.received_samples += pcm.shape[0]
        self.feed_pcm(pcm)


class TwilioTransport(SocketTransport):
    """One call: `start` metadata, caller audio in, agent audio out with mark accounting."""

    def __init__(self, start: Start, clock: Clock, *, mark_interval_ms: int = 100) -> None:
        super().__init__()
        self.start = start
        self.clock = clock
        self.source = TwilioAudioSource()
        self.sink = TwilioAudioSink(
            start.stream_sid, clock, self.outbox, mark_interval_ms=mark_interval_ms
        )
        self.dtmf: list[str] = []
        self.pacer = AudioPacer(TWILIO_RATE)

    @property
    def stream_sid(self) -> str:
        return self.start.stream_sid

    @property
    def custom_parameters(self) -> dict[str, str]:
        return self.start.custom_parameters

    @property
    def call_info(self) -> CallInfo:
        params = self.start.custom_parameters
        return CallInfo(
            transport="twilio",
            caller=params.get("caller") or params.get("From") or None,
            parameters=dict(params),
            call_id=self.start.call_sid or None,
        )

    @property
    def audio_in(self) -> TwilioAudioSource:
        return self.source

    @property
    def audio_out(self) -> TwilioAudioSink:
        return self.sink

    def handle(self, event: object) -> None:
        """Apply one inbound event (after `start`)."""
        if isinstance(event, Media):
            if event.track == "inbound":
                # μ-law: one byte per sample. Audio beyond real time is not forwarded.
                now = self.clock.now()
                if admit_audio(self.pacer, len(event.payload), now, TwilioProtocolError, log):
                    self.source.feed(event.payload)
        elif isinstance(event, Mark):
            self.sink.on_mark(event.name)
        elif isinstance(event, Stop):
            self.hang_up()
        elif isinstance(event, Dtmf):
            self.dtmf.append(event.digit)

    def _on_hang_up(self) -> None:
        # Twilio `stop` or the socket closed: nothing more plays; marks decide the verdicts.
        self.source.close()
        self.sink.connection_lost()


async def _wait_for_start(ws: CallSocket) -> Start:
    async with asyncio.timeout(START_TIMEOUT_S):
        while True:
            event = parse_message(await ws.recv())
            if isinstance(event, Connected):
                continue
            if isinstance(event, Start):
                if (event.encoding, event.sample_rate, event.channels) != (
                    "audio/x-mulaw",
                    TWILIO_RATE,
                    1,
                ):
                    raise TwilioProtocolError(
                        f"unsupported media format {event.encoding} {event.sample_rate} Hz "
                        f"{event.channels} ch (expected audio/x-mulaw 8000 Hz mono)"
                    )
                return event
            raise TwilioProtocolError(f"expected 'start' before '{type(event).__name__.lower()}'")


async def handle_stream(
    ws: CallSocket,
    on_call: OnCall,
    *,
    clock: Clock | None = None,
    mark_interval_ms: int = 100,
) -> None:
    """Serve one Media Stream socket: wait for `start`, run `on_call`, then close cleanly."""
    try:
        start = await _wait_for_start(ws)
    except (TwilioProtocolError, TimeoutError) as exc:
        reason = "no 'start' message" if isinstance(exc, TimeoutError) else str(exc)
        log.warning("twilio stream refused: %s", reason)
        await ws.close(1008, reason[:120])
        return
    except SocketClosed:
        return
    transport = TwilioTransport(start, clock or MonotonicClock(), mark_interval_ms=mark_interval_ms)

    def handle(raw: str | bytes) -> None:
        transport.handle(parse_message(raw))

    async def body() -> None:
        await on_call(transport)

    # The teardown sends what the call queued (e.g. a goodbye), then closes the stream.
    await run_socket_call(
        ws,
        transport,
        handle,
        body,
        protocol_error=TwilioProtocolError,
        log=log,
        label=f"twilio stream {transport.stream_sid}",
    )


def twilio_access(
    secret: str, path: str = "/twilio"
) -> Callable[[HTTPConnection], Response | None]:
    """Twilio's access rule: the token in the path (`{path}/<token>`) or as `?token=`."""

    def authorize(connection: HTTPConnection) -> Response | None:
        route, given = split_token(request_target(connection), path)
        if route is None:
            return PlainTextResponse("Not found\n", 404)
        if not token_ok(given, secret):
            return PlainTextResponse("Forbidden: missing or wrong token\n", 403)
        return None

    return authorize


async def serve_twilio(
    on_call: OnCall,
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    token: str | None = None,
    path: str = "/twilio",
    clock: Clock | None = None,
    mark_interval_ms: int = 100,
    max_message_bytes: int = MAX_MESSAGE_BYTES,
    gate: ConnectionGate | None = None,
    limits: HttpLimits | None = None,
    trusted: TrustedProxies | None = None,
) -> ServedEndpoint:
    """Listen for Twilio Media Streams at `ws://host:port{path}/{token}`.

    Each accepted stream runs `await on_call(transport)`; the call ends when it returns or the
    caller hangs up (`transport.wait_closed()`). A missing or wrong token gets HTTP 403 before
    any WebSocket is opened. Returns a handle with the URL (contains the token: show it to
    the operator, never log it).
    """
    secret = token or new_token()
    base = "/" + path.strip("/")
    authorize = twilio_access(secret, base)

    async def run(ws: CallSocket) -> None:
        await handle_stream(ws, on_call, clock=clock, mark_interval_ms=mark_interval_ms)

    def routes(calls: CallRegistry) -> list[BaseRoute]:
        return [
            call_route(base, run, authorize=authorize, calls=calls, gate=gate),
            call_route(base + "/{rest:path}", run, authorize=authorize, calls=calls, gate=gate),
        ]

    server = await serve_endpoint(
        routes,
        host,
        port,
        secret=secret,
        limits=limits or HttpLimits(max_message_bytes=max_message_bytes),
        gate=gate,
        trusted=trusted,
    )
    return ServedEndpoint(server, f"ws://{server.authority}{base}/{secret}", secret)
