"""uvicorn's WebSocket protocol with a synchronous lane for the sim's realtime sockets.

Why: for every client message uvicorn's ASGI path queues the message, pauses reading (an
``epoll_ctl`` call), wakes the app's reader task, and resumes reading (another one); every
server message goes through a queue, a writer task and ``await send``. A sim session receives
25–50 audio appends and sends ~20 events per second, and that bookkeeping cost more CPU than
the sim's own work (JSON, base64, VAD). The sim handles a message synchronously and can write
synchronously, so an app that finds a :class:`DirectSocket` under :data:`DIRECT_KEY` in the
WebSocket scope may take both lanes:

* ``on_message(handler)``: from now on each complete text/binary message is handed to
  ``handler`` inside ``data_received``, in order (messages already queued for the app go
  first); reading is never paused for the app, since the handler has finished with a message
  when it returns. The close handshake and disconnects still reach the app's ASGI ``receive``.
* ``send_text(text)``: writes a text frame at once and returns True, or returns False when the
  caller must use the ASGI ``send`` instead (handshake not done, closing or closed, or the
  transport's write buffer over its high-water mark: the awaited path is the flow control).

Everything else (handshake, pings, close, HTTP denial responses) is the protocol
`vocalis.transports.web.WebServer` serves every WebSocket with: uvicorn's own code, reading
ahead a few messages until a handler is set, and quiet about refused handshakes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from websockets.exceptions import InvalidState
from websockets.http11 import Request

from vocalis.transports.web.protocol import QueuedWebSocketProtocol

DIRECT_KEY = "vocalis.direct"
"""Scope key of the connection's :class:`DirectSocket` (absent under other servers)."""

INTERNAL_ERROR = 1011
MessageHandler = Callable[[str | bytes], None]

logger = logging.getLogger(__name__)


@runtime_checkable
class DirectSocket(Protocol):
    """The synchronous lanes of one WebSocket connection (see the module docs)."""

    def on_message(self, handler: MessageHandler | None) -> None: ...

    def send_text(self, text: str) -> bool: ...


class DirectWebSocketProtocol(QueuedWebSocketProtocol):
    """The transports' WebSocket protocol (`QueuedWebSocketProtocol`: read-ahead, quiet
    refusals) plus the :class:`DirectSocket` lanes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._handler: MessageHandler | None = None

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)  # set only when the handshake is accepted
        if scope is not None:
            scope[DIRECT_KEY] = self

    # --- receiving ------------------------------------------------------------------------------

    def on_message(self, handler: MessageHandler | None) -> None:
        """Hand every later message to ``handler`` (None: back to the ASGI queue)."""
        if handler is not None:
            keep = []
            while not self.queue.empty():
                message = self.queue.get_nowait()
                if message["type"] == "websocket.receive":
                    text = message.get("text")
                    handler(text if text is not None else message.get("bytes") or b"")
                else:
                    keep.append(message)
            for message in keep:
                self.queue.put_nowait(message)
            if self.read_paused:
                self.read_paused = False
                self.transport.resume_reading()
        self._handler = handler

    def send_receive_event_to_app(self) -> None:
        handler = self._handler
        if handler is None or self.close_sent:
            super().send_receive_event_to_app()
            return
        data = self.frames[0] if len(self.frames) == 1 else b"".join(self.frames)
        self.frames = []
        try:
            message: str | bytes = data.decode() if self.curr_msg_data_type == "text" else data
        except UnicodeDecodeError:
            self._fail(1007, "invalid UTF-8")
            return
        try:
            handler(message)
        except Exception:
            logger.exception("WebSocket message handler failed")
            self._fail(INTERNAL_ERROR, "internal error")

    def _fail(self, code: int, reason: str) -> None:
        """Close with ``code`` now (the app sees a disconnect), as uvicorn does for bad frames."""
        self._handler = None
        self.conn.fail(code, reason)
        self.handle_parser_exception()

    # --- sending --------------------------------------------------------------------------------

    def send_text(self, text: str) -> bool:
        """Write one text frame now if nothing stands in the way (see the module docs)."""
        if (
            not self.handshake_complete
            or self.close_sent
            or self.disconnected
            or self.initial_response is not None
            or not self.writable.is_set()
        ):
            return False
        try:
            self.conn.send_text(text.encode())
        except InvalidState:
            return False
        self.transport.write(b"".join(self.conn.data_to_send()))
        return True
