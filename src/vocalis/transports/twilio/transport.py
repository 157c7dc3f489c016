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
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from vocalis.audio.frame import AudioFrame, Int16Array
from vocalis.audio.g711 import ulaw_decode
from vocalis.audio.resample import StreamResampler
from vocalis.transports._web import (
    ConnectionGate,
    ConnectionHandler,
    Outbox,
    ProcessRequest,
    ServedEndpoint,
    TokenRedactingLogger,
    new_token,
    split_token,
    token_ok,
)
from vocalis.transports.base import AudioSource, Transport
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
from vocalis.utils.channel import Channel
from vocalis.utils.clock import Clock, MonotonicClock

__all__ = ["OnCall", "TwilioAudioSource", "TwilioTransport", "handle_stream", "serve_twilio"]

log = logging.getLogger("vocalis.transports.twilio")

OnCall = Callable[["TwilioTransport"], Awaitable[None]]

START_TIMEOUT_S = 10.0


class TwilioAudioSource(AudioSource):
    """Caller audio: μ-law 8 kHz payloads decoded, resampled to the consumer's rate."""

    def __init__(self) -> None:
        self._channel: Channel[Int16Array] = Channel()
        self._consumed = False
        self.received_samples = 0

    def feed(self, ulaw: bytes) -> None:
        pcm = ulaw_decode(ulaw)
        self.received_samples += pcm.shape[0]
        self._channel.send(pcm)

    def close(self) -> None:
        self._channel.close()

    @property
    def closed(self) -> bool:
        return self._channel.closed

    async def frames(self, sample_rate: int) -> AsyncIterator[AudioFrame]:
        if self._consumed:
            raise RuntimeError("TwilioAudioSource supports a single consumer")
        self._consumed = True
        rs = StreamResampler(TWILIO_RATE, sample_rate)
        async for pcm in self._channel:
            out = rs.push(pcm)
            if out.shape[0]:
                yield AudioFrame(out, sample_rate)
        tail = rs.flush()
        if tail.shape[0]:
            yield AudioFrame(tail, sample_rate)


class TwilioTransport(Transport):
    """One call: `start` metadata, caller audio in, agent audio out with mark accounting."""

    def __init__(self, start: Start, clock: Clock, *, mark_interval_ms: int = 100) -> None:
        self.start = start
        self.clock = clock
        self.outbox = Outbox()
        self.source = TwilioAudioSource()
        self.sink = TwilioAudioSink(
            start.stream_sid, clock, self.outbox, mark_interval_ms=mark_interval_ms
        )
        self.dtmf: list[str] = []
        self._hung_up = asyncio.Event()

    @property
    def stream_sid(self) -> str:
        return self.start.stream_sid

    @property
    def custom_parameters(self) -> dict[str, str]:
        return self.start.custom_parameters

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
                self.source.feed(event.payload)
        elif isinstance(event, Mark):
            self.sink.on_mark(event.name)
        elif isinstance(event, Stop):
            self.hang_up()
        elif isinstance(event, Dtmf):
            self.dtmf.append(event.digit)

    def hang_up(self) -> None:
        """The call ended (Twilio `stop` or the socket closed)."""
        self.source.close()
        self.sink.connection_lost()
        self._hung_up.set()

    @property
    def hung_up(self) -> bool:
        return self._hung_up.is_set()

    async def wait_closed(self) -> None:
        await self._hung_up.wait()


async def _wait_for_start(ws: ServerConnection) -> Start:
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


async def _write(ws: ServerConnection, outbox: Outbox) -> None:
    while (batch := await outbox.next_batch()) is not None:
        for message in batch:
            await ws.send(message)


async def _read(ws: ServerConnection, transport: TwilioTransport) -> None:
    try:
        async for raw in ws:
            transport.handle(parse_message(raw))
            if transport.hung_up:
                return
    except TwilioProtocolError as exc:
        log.warning("twilio stream %s: closing on protocol error: %s", transport.stream_sid, exc)
        await ws.close(1008, str(exc)[:120])
    except ConnectionClosed:
        pass
    finally:
        transport.hang_up()


async def handle_stream(
    ws: ServerConnection,
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
    except ConnectionClosed:
        return
    transport = TwilioTransport(start, clock or MonotonicClock(), mark_interval_ms=mark_interval_ms)
    reader = asyncio.create_task(_read(ws, transport), name="twilio-read")
    writer = asyncio.create_task(_write(ws, transport.outbox), name="twilio-write")
    try:
        await on_call(transport)
    finally:
        # Send what the call queued (e.g. a goodbye), then close the stream.
        transport.outbox.close()
        with contextlib.suppress(ConnectionClosed, TimeoutError):
            async with asyncio.timeout(5):
                await writer
        writer.cancel()
        reader.cancel()
        for task in (reader, writer):
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await task
        transport.hang_up()
        await ws.close()


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
) -> ServedEndpoint:
    """Listen for Twilio Media Streams at `ws://host:port{path}/{token}`.

    Each accepted stream runs `await on_call(transport)`; the call ends when it returns or the
    caller hangs up (`transport.wait_closed()`). A missing or wrong token gets HTTP 403 before
    any WebSocket is opened. Returns a handle with the URL (contains the token: show it to
    the operator, never log it).
    """
    secret = token or new_token()

    def process_request(connection: ServerConnection, request: Request) -> Response | None:
        _route, given = split_token(request.path, path)
        if _route is None:
            return connection.respond(404, "Not found\n")
        if not token_ok(given, secret):
            return connection.respond(403, "Forbidden: missing or wrong token\n")
        return None

    async def handler(ws: ServerConnection) -> None:
        await handle_stream(ws, on_call, clock=clock, mark_interval_ms=mark_interval_ms)

    on_request: ProcessRequest = process_request
    on_connection: ConnectionHandler = handler
    if gate is not None:
        # A fleet worker: admin routes, rate limit and admission around our own checks.
        on_request = gate.gate(on_request)
        on_connection = gate.wrap_handler(on_connection)
    server = await serve(
        on_connection,
        host,
        port,
        process_request=on_request,
        max_size=max_message_bytes,
        compression=None,
        logger=TokenRedactingLogger("vocalis.transports.twilio.ws", secret),
    )
    bound = server.sockets[0].getsockname()[1]
    shown_host = f"[{host}]" if ":" in host else host
    return ServedEndpoint(server, f"ws://{shown_host}:{bound}{path}/{secret}", secret)
