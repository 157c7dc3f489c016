"""Endpoint access tokens never reach a log line, even at DEBUG.

The token is the only thing between the internet and a paid realtime session. The WebSocket
library logs every handshake's request line at DEBUG (`< GET /twilio/<token> HTTP/1.1`), so
each endpoint must log through a logger that redacts its token.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from vocalis.transports.playground import PlaygroundTransport, serve_playground
from vocalis.transports.twilio import TwilioTransport, serve_twilio

# The test's own client logs its request line too; that is not the server's log.
CLIENT_LOG = logging.getLogger("tests.security.client")
CLIENT_LOG.propagate = False

TWILIO_TOKEN = "twilio-token-Zq8Xw2Lm9Pv4"
PLAYGROUND_TOKEN = "playground-token-Kd7Rt5Nb3Hs1"


@contextmanager
def all_logs_at_debug() -> Iterator[io.StringIO]:
    """Every record of every logger, formatted with its arguments (as a log file would be)."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield buffer
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


async def test_twilio_token_is_not_logged() -> None:
    async def on_call(transport: TwilioTransport) -> None:
        await transport.wait_closed()

    with all_logs_at_debug() as logs:
        endpoint = await serve_twilio(on_call, port=0, token=TWILIO_TOKEN)
        async with endpoint:
            async with connect(endpoint.url, logger=CLIENT_LOG) as ws:
                await ws.send("not json")  # a protocol error is logged too
                with pytest.raises(ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), 5)
            wrong = endpoint.url.replace(TWILIO_TOKEN, TWILIO_TOKEN[:-1] + "X")
            with pytest.raises(InvalidStatus):
                async with connect(wrong, logger=CLIENT_LOG):
                    pass
    text = logs.getvalue()
    assert "GET /twilio/" in text  # the request line is logged ...
    assert TWILIO_TOKEN not in text  # ... without the token


async def test_playground_token_is_not_logged() -> None:
    async def on_call(transport: PlaygroundTransport) -> None:
        await transport.wait_closed()

    with all_logs_at_debug() as logs:
        endpoint = await serve_playground(on_call, port=0, token=PLAYGROUND_TOKEN)
        async with endpoint:
            origin = f"http://127.0.0.1:{endpoint.port}"
            url = f"ws://127.0.0.1:{endpoint.port}/ws?token={PLAYGROUND_TOKEN}"
            async with connect(url, origin=origin, logger=CLIENT_LOG) as ws:  # type: ignore[arg-type]
                await ws.recv()
                await ws.send(json.dumps({"type": "nonsense"}))
                with pytest.raises(ConnectionClosed):
                    while True:
                        await asyncio.wait_for(ws.recv(), 5)
    text = logs.getvalue()
    assert "GET /ws?token=" in text
    assert PLAYGROUND_TOKEN not in text
