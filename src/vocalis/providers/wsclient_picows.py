"""`ProviderSocket` on picows (the `fast` extra); imported only when that backend is chosen.

picows hands each received frame to `WSListener.on_ws_frame` inside the socket's read: no
task wake-up per message, framing and unmasking in C. What `websockets` does for us and
picows leaves to the listener is done here: fragmented messages are reassembled (within the
message limit), a text message is decoded as UTF-8 (invalid text closes with 1007), the
peer's CLOSE is answered, write flow control (`pause_writing`) gates `send()`, and the
keepalive runs on loop timers (`_Keepalive`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

from picows import (
    WSCloseCode,
    WSError,
    WSFrame,
    WSListener,
    WSMsgType,
    WSTransport,
    ws_connect,
)
from picows.common import WSHandshakeError, WSProtocolError
from websockets.proxy import get_proxy
from websockets.uri import parse_uri

from vocalis.providers.wsclient import (
    CLOSE_TIMEOUT_S,
    WRITE_NOW_LIMIT,
    HandshakeRejected,
    OnMessage,
    SocketBackend,
    SocketClosed,
    SocketError,
)
from vocalis.utils.flag import Flag

_log = logging.getLogger(__name__)

# Messages up to this many bytes are masked into picows' own write buffer (so it stays about
# this size: a 40 ms voiced append is ~2.7 KB); larger ones are framed in a buffer of their
# own (`_PicowsSocket._send_text`). `_HEADROOM`: the most a frame header takes.
COPY_LIMIT = 4096
_HEADROOM = 14


class _QuietLog(logging.LoggerAdapter[logging.Logger]):
    """picows' log lines on our (redacting) logger, its per-socket INFO lines as DEBUG.

    An adapter, not the logger itself: given a `Logger`, picows logs through a child logger
    per socket, which the parent's redacting filter does not see.
    """

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        super().log(logging.DEBUG if level == logging.INFO else level, msg, *args, **kwargs)


class _Keepalive:
    """A ping every `interval`; a pong not back by the next one ends the socket (a dead peer
    must end `run()`, or the session never reconnects).

    Why not picows' auto-ping: it is a task per socket (its coroutine, a sleep future and a
    timer alive for the whole call); this is one timer handle. Periodic, as in
    `websockets`, so both backends keep the same promise (`wsclient.KEEPALIVE_S`).
    """

    __slots__ = ("_handle", "_interval", "_loop", "_transport", "_waiting")

    def __init__(self, transport: WSTransport, interval: float) -> None:
        self._transport = transport
        self._interval = interval
        self._loop = asyncio.get_running_loop()
        self._waiting = False
        self._handle: asyncio.TimerHandle | None = self._loop.call_later(interval, self._due)

    def _due(self) -> None:
        transport = self._transport
        self._handle = None
        if transport.is_disconnected or transport.is_close_frame_sent:
            return
        if self._waiting:  # the last ping went unanswered for a whole interval: dead
            transport.send_close(WSCloseCode.GOING_AWAY, b"no pong to the keepalive ping")
            transport.disconnect(graceful=False)  # a dead peer would never ack a close
            return
        self._waiting = True
        transport.send_ping()
        self._handle = self._loop.call_later(self._interval, self._due)

    def pong(self) -> None:
        self._waiting = False

    def stop(self) -> None:
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.cancel()


class _Listener(WSListener):
    """Messages to the consumer (kept until one is attached), writability, the end."""

    def __init__(self, max_size: int) -> None:
        self._max_size = max_size
        self._on_message: OnMessage | None = None
        self._early: list[str | bytes] = []  # arrived before `run()` attached (session.created)
        self._fragments: list[bytes] = []
        self._fragment_type = WSMsgType.TEXT
        self._fragment_size = 0
        self._failed = False
        self._keepalive: _Keepalive | None = None
        # Called once the socket closed (`listen()`); None when nobody listens that way.
        self.on_end: Callable[[], None] | None = None
        self.writable = Flag()  # waited on only when the write buffer is full
        self.writable.set()

    def keep_alive(self, transport: WSTransport, interval: float) -> None:
        self._keepalive = _Keepalive(transport, interval)

    def attach(self, on_message: OnMessage) -> None:
        self._on_message = on_message
        early, self._early = self._early, []
        # Only what arrived before a failure is here: deliver it all, as a queue would.
        try:
            for message in early:
                on_message(message)
        except BaseException:
            self._failed = True
            raise

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if self._failed:  # picows parses the rest of this read before it disconnects
            return
        try:
            on_message = self._on_message
            if frame.msg_type is WSMsgType.TEXT and frame.fin and on_message is not None:
                # Nearly every frame (each server event): decoded straight from picows'
                # buffer, one copy, no further layers.
                on_message(_utf8_text(frame))
            else:
                self._on_frame(transport, frame)
        except BaseException:
            # As a consumer loop would stop: nothing after a bad message or a failing
            # consumer reaches the consumer.
            self._failed = True
            raise

    def _on_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if kind is WSMsgType.TEXT or kind is WSMsgType.BINARY:
            if frame.fin:
                self._deliver(kind, frame.get_payload_as_bytes())
            else:
                self._fragments, self._fragment_type = [], kind
                self._fragment_size = 0
                self._add_fragment(frame)
        elif kind is WSMsgType.CONTINUATION:
            self._add_fragment(frame)
            if frame.fin:
                payload = b"".join(self._fragments)
                self._fragments = []
                self._deliver(self._fragment_type, payload)
        elif kind is WSMsgType.CLOSE:
            if not transport.is_close_frame_sent:
                # Echo the peer's code; a CLOSE without one reads as NO_INFO (0), which
                # picows would put on the wire: an invalid code a strict peer fails on.
                code = frame.get_close_code()
                transport.send_close(WSCloseCode.OK if code == WSCloseCode.NO_INFO else code)
            transport.disconnect()
        elif kind is WSMsgType.PONG and self._keepalive is not None:
            self._keepalive.pong()

    def _add_fragment(self, frame: WSFrame) -> None:
        self._fragment_size += frame.payload_size
        if self._fragment_size > self._max_size:
            raise WSProtocolError(WSCloseCode.MESSAGE_TOO_BIG, "message too big")
        self._fragments.append(frame.get_payload_as_bytes())

    def _deliver(self, kind: WSMsgType, payload: bytes) -> None:
        message: str | bytes = payload
        if kind is WSMsgType.TEXT:
            message = _utf8_text(payload)
        if self._on_message is None:
            self._early.append(message)
        else:
            self._on_message(message)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        if self._keepalive is not None:
            self._keepalive.stop()
        self.writable.set()  # wake a waiting send(): it sees the socket closed
        on_end, self.on_end = self.on_end, None
        if on_end is not None:
            # A loop turn later, as a receive task's wake-up would be: tasks woken by the
            # last messages (an op's answer right before the peer's close) run first.
            asyncio.get_running_loop().call_soon(on_end)

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()


def _utf8_text(payload: WSFrame | bytes) -> str:
    """A text message's payload as `str`; invalid UTF-8 fails the socket with 1007."""
    try:
        if isinstance(payload, bytes):
            return payload.decode("utf-8")
        return payload.get_payload_as_utf8_text()
    except UnicodeDecodeError:
        raise WSProtocolError(WSCloseCode.INVALID_TEXT, "invalid UTF-8") from None


class _PicowsSocket:
    """picows' transport and listener behind `ProviderSocket`."""

    backend: SocketBackend = "picows"

    def __init__(self, transport: WSTransport, listener: _Listener) -> None:
        self._transport = transport
        self._listener = listener

    def _closed(self) -> bool:
        transport = self._transport
        return bool(transport.is_disconnected or transport.is_close_frame_sent)

    def write(self, message: str) -> bool:
        if (
            self._closed()
            or not self._listener.writable.is_set()
            or self._transport.underlying_transport.get_write_buffer_size() > WRITE_NOW_LIMIT
        ):
            return False
        self._send_text(message)
        return True

    async def send(self, message: str) -> None:
        await self._listener.writable.wait()
        if self._closed():
            raise SocketClosed("socket closed")
        self._send_text(message)

    def _send_text(self, message: str) -> None:
        """One text frame on the transport; a failing write is `SocketClosed`.

        picows masks a client frame into its own write buffer, which grows to the largest
        message ever sent and never shrinks: a 200 ms silent append (13 KB) or one large
        tool output would stay allocated per session for the rest of the call (#17). A
        message over `COPY_LIMIT` is instead framed and masked in a bytearray of its own,
        freed once written (the transport copies what the socket does not take at once).
        """
        data = message.encode()
        try:
            if len(data) <= COPY_LIMIT:
                self._transport.send(WSMsgType.TEXT, data)
                return
            framed = bytearray(_HEADROOM)
            framed += data
            self._transport.send_reuse_external_bytearray(WSMsgType.TEXT, framed, _HEADROOM)
        except Exception as exc:
            raise SocketClosed(str(exc)) from exc

    def listen(self, on_message: OnMessage, on_end: Callable[[], None]) -> None:
        listener = self._listener
        listener.on_end = on_end
        try:
            listener.attach(on_message)
        except Exception as exc:  # a message that arrived before: as inside the read
            _log.warning("provider message handler failed: %r", exc)
            self._transport.disconnect(graceful=False)  # on_end follows, from the disconnect
            return
        if self._transport.is_disconnected:  # closed before anyone listened
            listener.on_end = None
            on_end()

    async def run(self, on_message: OnMessage) -> None:
        self._listener.attach(on_message)
        # A protocol violation closed it (as websockets ends with a close code): just ended.
        with contextlib.suppress(WSProtocolError):
            await self._transport.wait_disconnected()

    async def close(self) -> None:
        transport = self._transport
        if transport.is_disconnected:
            return
        if not transport.is_close_frame_sent:
            transport.send_close(WSCloseCode.OK)
        try:
            await asyncio.wait_for(transport.wait_disconnected(), CLOSE_TIMEOUT_S)
        except Exception:  # the peer never answered, or the socket broke: drop it
            transport.disconnect(graceful=False)


async def open_picows(
    url: str,
    headers: Mapping[str, str],
    *,
    open_timeout: float,
    max_size: int,
    logger: logging.Logger,
    keepalive_s: float,
) -> _PicowsSocket:
    """Open `url` with picows; errors, keepalive and redirects as `open_socket` and the
    `wsclient` module document them."""
    proxy = get_proxy(parse_uri(url))  # the environment's proxy, by websockets' own rules
    try:
        async with asyncio.timeout(open_timeout):
            transport, listener = await ws_connect(
                lambda: _Listener(max_size),
                url,
                extra_headers=dict(headers),
                websocket_handshake_timeout=open_timeout,
                max_frame_size=max_size,
                logger_name=_QuietLog(logger, {}),
                proxy=proxy,
                enable_auto_ping=False,  # our `_Keepalive`: a timer, not a task per socket
                # picows resends every header (our Authorization) to wherever a redirect
                # points, another origin included: refuse redirects instead.
                max_redirects=0,
            )
    except WSHandshakeError as exc:
        status = exc.response.status if exc.response is not None else None
        if status is not None and int(status) != 101:
            raise HandshakeRejected(int(status)) from None
        raise SocketError(f"{type(exc).__name__}: {exc}") from exc
    except WSError as exc:
        raise SocketError(f"{type(exc).__name__}: {exc}") from exc
    assert isinstance(listener, _Listener)
    listener.keep_alive(transport, keepalive_s)
    return _PicowsSocket(transport, listener)
