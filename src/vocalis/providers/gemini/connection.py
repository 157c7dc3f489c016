"""One Gemini Live socket: open it (handshake, ``setup``, ``setupComplete``), pump it, end it.

A connection is discarded as a whole when it dies or is replaced (a re-seed, a planned
resume after ``goAway``): its send queue goes with it, so nothing meant for an old session
ever reaches a new one, and a ``retired`` connection's late messages are ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from vocalis.providers.base import ErrorKind, OperationError, ProviderError
from vocalis.providers.gemini.errors import close_error, http_kind
from vocalis.utils.logsafe import redacting_logger

_WS_LOGGER = "vocalis.providers.gemini.ws"


@dataclass(eq=False)
class Connection:
    ws: ClientConnection
    index: int
    queue: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    ended: asyncio.Future[tuple[int | None, str]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    # The reader (`pump`) and the writer (`drain`), started by the shell.
    reader: asyncio.Task[None] | None = None
    writer: asyncio.Task[None] | None = None
    # Replaced by a newer connection: its messages are ignored, its end is not a loss.
    retired: bool = False
    go_away: bool = False
    # Set when this side ends the call (a provider past a per-call bound): the close's error.
    fatal: ProviderError | None = None

    @property
    def alive(self) -> bool:
        return not self.ended.done()

    def send(self, frame: str) -> None:
        if self.alive and not self.retired:
            self.queue.put_nowait(frame)

    def end(self, code: int | None, reason: str) -> None:
        if not self.ended.done():
            self.ended.set_result((code, reason))

    async def retire(self) -> None:
        """Stop sending, close the socket, end. The reader goes on (discarding: retired) until
        the close completes: a reader stopped first left a flooding peer's frames unread, so
        its close answer was never seen and each close took the full close timeout (10 s)."""
        self.retired = True
        if self.writer is not None:
            self.writer.cancel()
        with contextlib.suppress(Exception):
            await self.ws.close()
        if self.reader is not None:
            self.reader.cancel()
        self.end(1000, "replaced")


async def open_socket(
    url: str,
    headers: dict[str, str],
    setup: dict[str, Any],
    *,
    ssl_context: ssl.SSLContext | None,
    timeout_s: float,
) -> tuple[ClientConnection, dict[str, Any]]:
    """Connect, send ``setup`` and return the socket with the server's first message.

    Raises `OperationError` with the neutral kind of what went wrong (a refused key is FATAL).
    """
    try:
        async with asyncio.timeout(timeout_s):
            ws = await connect(
                url,
                additional_headers=headers,
                ssl=ssl_context if url.startswith("wss://") else None,
                max_size=None,
                compression=None,
                logger=redacting_logger(_WS_LOGGER),
            )
            try:
                await ws.send(json.dumps(setup, separators=(",", ":")))
                first = json.loads(await ws.recv())
            except ConnectionClosed as exc:
                rcvd = exc.rcvd
                error = close_error(rcvd.code if rcvd else 1006, rcvd.reason if rcvd else "")
                raise OperationError(error.kind, error.message, error.code) from None
            except ValueError:
                await ws.close(1007, "invalid JSON")
                raise OperationError(
                    ErrorKind.SERVER, "setup answer is not JSON", "bad_frame"
                ) from None
    except TimeoutError:
        raise OperationError(ErrorKind.TIMEOUT, "no setupComplete in time", "timeout") from None
    except InvalidStatus as exc:
        status = exc.response.status_code
        raise OperationError(
            http_kind(status), f"handshake refused (HTTP {status})", f"http_{status}"
        ) from None
    except (OSError, WebSocketException) as exc:
        raise OperationError(
            ErrorKind.UNAVAILABLE, f"cannot connect: {type(exc).__name__}", "unavailable"
        ) from None
    if not isinstance(first, dict):
        await ws.close(1007, "invalid first message")
        raise OperationError(ErrorKind.SERVER, "setup answer is not an object", "bad_frame")
    return ws, first


async def pump(conn: Connection, on_message: Callable[[Connection, Any], None]) -> None:
    """Read until the socket ends, then record how it ended (reader task)."""
    try:
        async for raw in conn.ws:
            if conn.retired:
                continue
            try:
                message = json.loads(raw)
            except ValueError:
                continue
            on_message(conn, message)
    except ConnectionClosed:
        pass
    finally:
        conn.end(
            conn.ws.close_code if conn.ws.close_code is not None else 1006,
            conn.ws.close_reason or "",
        )


async def drain(conn: Connection) -> None:
    """Send queued frames in order (writer task)."""
    try:
        while True:
            frame = await conn.queue.get()
            await conn.ws.send(frame)
    except ConnectionClosed:
        conn.end(conn.ws.close_code, conn.ws.close_reason or "")
