"""The sim-server refuses what the real client and endpoints refuse (issue #14, item 10).

Deeply nested JSON used to raise RecursionError out of the sim's frame handler, and NaN was
accepted as a number. Both must be an `invalid_request_error` event on a connection that stays
usable — the same outcome as any other malformed event.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import ClientConnection, connect

from vocalis.sim.server import SimServer


async def next_event(ws: ClientConnection, kind: str) -> dict[str, object]:
    async with asyncio.timeout(10):
        while True:
            event = json.loads(await ws.recv())
            if event["type"] == kind:
                return dict(event)


@pytest.mark.parametrize(
    "frame",
    [
        "[" * 200_000,
        '{"type": "input_audio_buffer.clear", "x": ' + "[" * 200_000 + "]" * 200_000 + "}",
        '{"type": "session.update", "session": {"type": "realtime", "temperature": NaN}}',
        '{"type": "input_audio_buffer.clear", "x": Infinity}',
    ],
    ids=["nested-array", "nested-inside-event", "nan", "infinity"],
)
async def test_hostile_json_is_an_error_event_and_the_socket_lives_on(frame: str) -> None:
    async with SimServer() as server:
        url = server.url + "?model=gpt-realtime"
        async with connect(url, additional_headers={"Authorization": "Bearer t"}) as ws:
            await next_event(ws, "session.created")
            await ws.send(frame)
            error = await next_event(ws, "error")
            assert "Invalid JSON" in json.dumps(error)
            # Still serving: a valid event gets its normal answer.
            await ws.send(json.dumps({"type": "input_audio_buffer.clear"}))
            await next_event(ws, "input_audio_buffer.cleared")
