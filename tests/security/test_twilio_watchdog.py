"""A Twilio stream that takes audio but never acknowledges it (issue #14, item 12).

Marks are the only playback clock Twilio gives; a stalled or hostile stream that stops echoing
them used to leave the agent's segment unresolved until the caller hung up (the runtime waits
for every verdict). Now, with marks outstanding and none acknowledged for `mark_timeout_s`, the
sink tells Twilio to clear and resolves from what *was* acknowledged. Time is a `ManualClock`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.client import ClientConnection, connect

from vocalis.transports.base import PlayoutResult, PlayoutStatus
from vocalis.transports.twilio import TwilioSegment, TwilioTransport, serve_twilio
from vocalis.utils.clock import ManualClock

QUIET = logging.getLogger("tests.security.watchdog.client")
QUIET.propagate = False


class OneSegment:
    """The call: plays 2 s of audio as one segment and keeps its verdict."""

    def __init__(self) -> None:
        self.result: asyncio.Future[PlayoutResult] = asyncio.get_running_loop().create_future()
        self.segment: TwilioSegment | None = None
        self.began = asyncio.Event()

    async def __call__(self, transport: TwilioTransport) -> None:
        segment = self.segment = transport.audio_out.begin_segment("seg-1", 8000)
        self.began.set()
        segment.push(np.full(16000, 1000, dtype=np.int16))
        segment.end()
        self.result.set_result(await segment.wait_for_playout())
        await transport.wait_closed()


async def next_of(ws: ClientConnection, event: str) -> dict[str, object]:
    async with asyncio.timeout(10):
        while True:
            message = json.loads(await ws.recv())
            if message["event"] == event:
                return dict(message)


@pytest.mark.parametrize("acked_marks", [0, 1])
async def test_marks_never_acknowledged_resolve_from_what_was(acked_marks: int) -> None:
    clock = ManualClock(50.0)
    call = OneSegment()
    endpoint = await serve_twilio(call, port=0, token="wd-tok", clock=clock)
    async with endpoint, connect(endpoint.url, logger=QUIET) as ws:
        await ws.send(json.dumps({"event": "start", "start": {"streamSid": "MZ1"}}))
        for _ in range(acked_marks):  # the first mark follows the first 20 ms frame
            mark = await next_of(ws, "mark")
            await ws.send(json.dumps({"event": "mark", "mark": mark["mark"]}))
            await call.began.wait()
            assert call.segment is not None
            await asyncio.wait_for(call.segment.started, 10)  # the server took the mark
        await next_of(ws, "mark")  # a mark is outstanding, and will stay so
        assert not call.result.done()
        await clock.advance(5.0)  # the default mark timeout, without one acknowledgement
        await next_of(ws, "clear")  # Twilio is told to stop playing
        result = await asyncio.wait_for(call.result, 10)
    if acked_marks:
        assert result.status is PlayoutStatus.PARTIAL and result.played_ms == 20.0
    else:
        assert result.status is PlayoutStatus.SKIPPED and result.played_ms == 0.0


async def test_a_stream_that_acknowledges_is_left_alone() -> None:
    clock = ManualClock(50.0)
    call = OneSegment()
    endpoint = await serve_twilio(call, port=0, token="wd-tok", clock=clock)
    async with endpoint, connect(endpoint.url, logger=QUIET) as ws:
        await ws.send(json.dumps({"event": "start", "start": {"streamSid": "MZ1"}}))
        while not call.result.done():  # each mark acknowledged 4 s after the last one
            mark = asyncio.ensure_future(next_of(ws, "mark"))
            either: list[asyncio.Future[Any]] = [mark, call.result]
            done, _ = await asyncio.wait(either, return_when="FIRST_COMPLETED")
            if mark not in done:
                mark.cancel()
                break
            await clock.advance(4.0)
            await call.began.wait()
            assert call.segment is not None
            before = call.segment.played_ms
            await ws.send(json.dumps({"event": "mark", "mark": mark.result()["mark"]}))
            async with asyncio.timeout(10):  # the server took the acknowledgement
                while call.segment.played_ms == before and not call.result.done():  # noqa: ASYNC110
                    await asyncio.sleep(0.001)
        result = await asyncio.wait_for(call.result, 10)
    assert result.status is PlayoutStatus.FULL
