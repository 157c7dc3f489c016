"""#14 item 11: a provider that accepts and then drops every connection is given up.

An adversarial fake provider (loopback, port 0): it completes the session handshake
(`session.created`, then `session.updated` for the client's `session.update`) and closes the
socket right away, every time. Before, each successful setup reset the attempt counter and the
client redialled about every second forever; now short sessions count as failures and the
session closes with `reconnect_failed` after `max_reconnect_attempts` of them in a row.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.server import ServerConnection, serve

from vocalis.providers.base import ErrorKind, SessionClosed, SessionOptions, SessionReconnected
from vocalis.providers.openai.realtime import OpenAIRealtimeModel

pytestmark = pytest.mark.usefixtures("websocket_backend")


async def test_accept_then_drop_every_connection_gives_up_after_the_cap() -> None:
    connections = 0

    async def handler(ws: ServerConnection) -> None:
        nonlocal connections
        connections += 1
        await ws.send(json.dumps({"type": "session.created", "session": {}}))
        async for raw in ws:
            event = json.loads(raw)
            if event.get("type") == "session.update":
                await ws.send(
                    json.dumps(
                        {"type": "session.updated", "event_id": "e", "session": event["session"]}
                    )
                )
                await ws.close()  # accepted, configured ... and dropped
                return

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        model = OpenAIRealtimeModel(
            base_url=f"ws://127.0.0.1:{port}/v1",
            api_key="test",
            max_reconnect_attempts=3,
            reconnect_backoff_s=0.01,
            reconnect_backoff_max_s=0.05,
            reconnect_stable_s=30.0,
        )
        session = await model.connect(SessionOptions())
        events = []
        async with asyncio.timeout(30):
            async for event in session.events():
                events.append(event)
        await session.aclose()

    closed = events[-1]
    assert isinstance(closed, SessionClosed) and closed.reason == "reconnect_failed"
    assert closed.error is not None and closed.error.kind is ErrorKind.UNAVAILABLE
    # The first connection, then one per allowed failure: 1 + 3, and not one more.
    assert connections == 4
    assert sum(isinstance(e, SessionReconnected) for e in events) == 3
