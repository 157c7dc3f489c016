"""Writing one outbox frame to a sim WebSocket: text, a close frame, or a simulated drop.

Why a module of its own: every dialect's shell (OpenAI in ``server.py``, Gemini in
``gemini/shell.py``) ends a connection the same way, and a drop must lose what is still
buffered, like a real network failure (see ``serving.ABORT_KEY``). One place decides that.
"""

from __future__ import annotations

from starlette.websockets import WebSocket

from vocalis.sim.serving import ABORT_KEY
from vocalis.sim.session import Abort, Close

ABNORMAL_CLOSE = 1006
"""The close code of a connection that ended without a close frame (RFC 6455 §7.4.1)."""


async def write_frame(websocket: WebSocket, frame: str | Close | Abort) -> int | None:
    """Send one frame; returns the close code when it ended the connection, else None.

    An :class:`Abort` drops the TCP link at once; without an abort hook (a server other than
    uvicorn), returning without a close frame still makes the server close the link.
    Transport errors propagate: what a vanished peer means differs per dialect.
    """
    if isinstance(frame, str):
        await websocket.send_text(frame)
        return None
    if isinstance(frame, Close):
        await websocket.close(frame.code, frame.reason)
        return frame.code
    abort = websocket.scope.get(ABORT_KEY)
    if abort is not None:
        abort()
    return ABNORMAL_CLOSE
