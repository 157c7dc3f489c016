"""The provider's WebSocket, on one of two client libraries: `websockets` or `picows`.

Why two: per speaking session-second the provider socket carries ~25 audio appends out and
~25 audio deltas in, and with `websockets` (pure-Python framing, a task wake-up per received
message) that wire work alone costs more CPU than everything vocalis does with the audio
(#17). `picows` (Cython, in the `fast` extra) frames and parses in C and hands each message
to a callback inside the socket's read: measured 1.7–1.9x cheaper for the same traffic. It
is the default when installed; `websockets` (always installed) otherwise, or when chosen
with `backend=` / `VOCALIS_WEBSOCKET=websockets`.

Both backends behave the same towards the session: the same URL schemes and TLS default
(`ssl.create_default_context()`, so `SSL_CERT_FILE` applies), the same headers, the proxy
from the environment (`websockets`' own rules), the same 16 MiB message limit, the same
keepalive (a ping after `KEEPALIVE_S` without one answered, the socket closed when its pong
does not come within `KEEPALIVE_S`: a half-open connection ends `run()` instead of hanging
the session), a refused handshake raised as `HandshakeRejected(status)`, any other failure
to open as `OSError`, `TimeoutError` or `SocketError`, every received message handed over
whole (text as `str`, binary as `bytes`), and a closed socket seen as `run()` returning /
`SocketClosed` from `send()`. Redirects: `websockets` follows them and drops the
`Authorization` header on a cross-origin one; picows would resend it to any host, so on
picows a redirect is refused (`HandshakeRejected(30x)`; the OpenAI endpoint does not
redirect).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import os
from collections.abc import Callable, Mapping
from typing import Literal, Protocol

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException
from websockets.protocol import State

__all__ = [
    "BACKEND_ENV",
    "HandshakeRejected",
    "OnMessage",
    "ProviderSocket",
    "SocketBackend",
    "SocketClosed",
    "SocketError",
    "open_socket",
    "resolve_backend",
]

SocketBackend = Literal["websockets", "picows"]
OnMessage = Callable[[str | bytes], None]
BACKEND_ENV = "VOCALIS_WEBSOCKET"
_log = logging.getLogger(__name__)

# Above this many bytes waiting in the socket's write buffer, `write()` refuses and the
# caller goes through `send()`, which waits for the buffer to drain (flow control).
WRITE_NOW_LIMIT = 64 * 1024
# How long `close()` waits for the peer's side of the close (and websockets for its TCP
# close) before dropping the connection: a dead peer never answers.
CLOSE_TIMEOUT_S = 2.0
# Keepalive ping interval and pong timeout (websockets' defaults, now said for both backends).
KEEPALIVE_S = 20.0


class SocketError(Exception):
    """The socket could not be opened or broke the WebSocket protocol."""


class HandshakeRejected(SocketError):
    """The server answered the upgrade with an HTTP status instead of a WebSocket."""

    def __init__(self, status: int) -> None:
        super().__init__(f"handshake rejected (HTTP {status})")
        self.status = status


class SocketClosed(Exception):
    """`send()` on a socket that is closed or closing."""


class ProviderSocket(Protocol):
    """One open provider WebSocket, whichever library carries it."""

    backend: SocketBackend

    def write(self, message: str) -> bool:
        """Write a text message now, without awaiting; False when that is not possible
        (not open, a fragmented send in progress, or the write buffer above the limit):
        then use `send()`. Raises `SocketClosed` when the write itself failed."""

    async def send(self, message: str) -> None:
        """Write a text message once the write buffer has room; `SocketClosed` if closed."""

    async def run(self, on_message: OnMessage) -> None:
        """Hand every received message to `on_message` until the socket closes, then return.

        An exception from `on_message` closes the socket and is raised here.
        """

    def listen(self, on_message: OnMessage, on_end: Callable[[], None]) -> None:
        """`run()` without awaiting it: every received message to `on_message`, then
        `on_end()` once, when the socket has closed (also after `on_message` raised, which
        closes the socket; the error is logged).

        Why: a session listens for the whole call. On picows this is the socket's own read
        and disconnect callbacks, no task (its coroutine, future and frames alive for the
        call); on websockets, whose messages arrive through an iterator, a task runs `run()`.
        """

    async def close(self) -> None:
        """Close handshake (bounded wait), then the TCP connection; idempotent."""


def resolve_backend(backend: SocketBackend | Literal["auto"] | None = None) -> SocketBackend:
    """`auto`/None: `VOCALIS_WEBSOCKET` if set, else picows when installed, else websockets."""
    choice: str = backend or "auto"
    if choice == "auto":
        choice = os.environ.get(BACKEND_ENV, "") or "auto"
    if choice == "auto":
        return "picows" if importlib.util.find_spec("picows") is not None else "websockets"
    if choice not in ("websockets", "picows"):
        raise ValueError(f"unknown WebSocket backend {choice!r}; use websockets or picows")
    if choice == "picows" and importlib.util.find_spec("picows") is None:
        raise ValueError("the picows backend needs the `fast` extra: pip install 'vocalis[fast]'")
    return "picows" if choice == "picows" else "websockets"


async def open_socket(
    backend: SocketBackend,
    url: str,
    headers: Mapping[str, str],
    *,
    open_timeout: float,
    max_size: int,
    logger: logging.Logger,
    keepalive_s: float = KEEPALIVE_S,
) -> ProviderSocket:
    """Open `url` (ws:// or wss://) with `headers` on `backend`.

    `keepalive_s`: ping after this long without a ping answered; no pong within it closes
    the socket (a dead peer must end `run()`, or the session never reconnects)."""
    if backend == "picows":
        from vocalis.providers.wsclient_picows import open_picows

        return await open_picows(
            url,
            headers,
            open_timeout=open_timeout,
            max_size=max_size,
            logger=logger,
            keepalive_s=keepalive_s,
        )
    try:
        ws = await connect(
            url,
            additional_headers=dict(headers),
            open_timeout=open_timeout,
            max_size=max_size,
            compression=None,
            logger=logger,
            ping_interval=keepalive_s,
            ping_timeout=keepalive_s,
            # How long a failing socket waits for the peer's TCP close (default 10 s): a
            # dead peer never sends it, and the session's reconnect waits on `run()`.
            close_timeout=CLOSE_TIMEOUT_S,
        )
    except InvalidStatus as exc:
        raise HandshakeRejected(exc.response.status_code) from None
    except WebSocketException as exc:
        raise SocketError(f"{type(exc).__name__}: {exc}") from exc
    return _WebsocketsSocket(ws)


class _WebsocketsSocket:
    """`websockets`' asyncio client behind `ProviderSocket`."""

    backend: SocketBackend = "websockets"

    def __init__(self, ws: ClientConnection) -> None:
        self._ws = ws
        self._receiver: asyncio.Task[None] | None = None  # `listen()`'s task

    def write(self, message: str) -> bool:
        # The same frame `ws.send` would write, synchronously: per append, websockets' async
        # send context costs more than the write itself.
        ws = self._ws
        if (
            ws.protocol.state is not State.OPEN
            or ws.send_in_progress is not None
            or ws.transport.get_write_buffer_size() > WRITE_NOW_LIMIT
        ):
            return False
        try:
            ws.protocol.send_text(message.encode())
            ws.send_data()
        except Exception as exc:
            raise SocketClosed(str(exc)) from exc
        return True

    async def send(self, message: str) -> None:
        try:
            await self._ws.send(message)
        except ConnectionClosed as exc:
            raise SocketClosed(str(exc)) from exc

    async def run(self, on_message: OnMessage) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in self._ws:
                on_message(raw)

    def listen(self, on_message: OnMessage, on_end: Callable[[], None]) -> None:
        async def receive() -> None:
            try:
                await self.run(on_message)
            except Exception as exc:  # on_message failed: the socket is done
                _log.warning("provider message handler failed: %r", exc)
                await self.close()
            finally:
                on_end()

        self._receiver = asyncio.get_running_loop().create_task(receive(), name="ws-receive")

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._ws.close(), CLOSE_TIMEOUT_S)
        receiver = self._receiver
        if receiver is not None and receiver is not asyncio.current_task():
            # Closed: its iteration ends now; no task outlives the socket it listened to.
            await asyncio.wait({receiver}, timeout=CLOSE_TIMEOUT_S)
            receiver.cancel()
