"""Caller audio is paced to real time on every transport (issue #14, item 2).

Before: Twilio and playground audio went upstream as fast as it arrived — 5 s of flooding
carried 12,329 s of audio to the (paid) provider. Now each call's inbound audio has a budget of
wall time + slack; the excess is dropped, and a call that keeps flooding is closed with 1008.
Time is a `ManualClock`: the server's notion of "now" is exactly what the test says.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from vocalis.transports.pacing import PACING, AudioPacer, PaceVerdict, PacingTotals
from vocalis.transports.playground import PlaygroundTransport, serve_playground
from vocalis.transports.twilio import TwilioTransport, serve_twilio
from vocalis.utils.clock import ManualClock

QUIET = logging.getLogger("tests.security.pacing.client")
QUIET.propagate = False
TOKEN = "pacing-token-Xy7"


# --------------------------------------------------------------------------- the decision core


@given(
    st.lists(st.tuples(st.integers(1, 4000), st.floats(0, 0.5, allow_nan=False)), max_size=300),
    st.floats(0, 3, allow_nan=False),
)
def test_accepted_audio_never_exceeds_wall_time_plus_slack(
    offers: list[tuple[int, float]], slack: float
) -> None:
    pacer = AudioPacer(8000, slack_s=slack, close_after_s=None, totals=PacingTotals())
    now = 100.0
    for samples, step in offers:
        now += step
        pacer.offer(samples, now)
        assert pacer.accepted_samples <= (now - 100.0 + slack) * 8000


@given(st.lists(st.floats(0, 0.4, allow_nan=False), min_size=1, max_size=400))
def test_real_time_audio_with_jitter_is_never_dropped(lateness: list[float]) -> None:
    """20 ms frames, each arriving up to 400 ms late (bursts after a stall): all forwarded."""
    pacer = AudioPacer(8000, slack_s=0.5, totals=PacingTotals())
    for k, late in enumerate(lateness):
        assert pacer.offer(160, k * 0.02 + late) is PaceVerdict.ACCEPT


def test_a_flood_is_dropped_then_closed() -> None:
    totals = PacingTotals()
    pacer = AudioPacer(8000, slack_s=2.0, close_after_s=10.0, totals=totals)
    verdicts = [pacer.offer(160, 0.0) for _ in range(700)]  # 14 s of audio in no time
    assert verdicts[:100] == [PaceVerdict.ACCEPT] * 100  # the slack: 2 s
    assert verdicts[100:600] == [PaceVerdict.DROP] * 500  # the next 10 s dropped
    assert set(verdicts[600:]) == {PaceVerdict.CLOSE}  # more than 10 s dropped: close
    assert totals.calls_closed == 1 and totals.dropped_audio_s == pytest.approx(12.0)


# --------------------------------------------------------------------------- transports


class Counting:
    """The call: counts the caller audio that reached it (what would go upstream)."""

    def __init__(self) -> None:
        self.samples = 0
        self.started = asyncio.Event()
        self._grew = asyncio.Condition()

    async def __call__(self, transport: TwilioTransport | PlaygroundTransport) -> None:
        self.started.set()
        async for frame in transport.audio_in.frames(8000):
            self.samples += frame.samples.shape[0]
            async with self._grew:
                self._grew.notify_all()

    async def reached(self, samples: int) -> None:
        async with asyncio.timeout(10), self._grew:
            await self._grew.wait_for(lambda: self.samples >= samples)

    @property
    def seconds(self) -> float:
        return self.samples / 8000


async def close_code(ws: ClientConnection) -> tuple[int, str]:
    with pytest.raises(ConnectionClosed) as info:
        while True:
            await asyncio.wait_for(ws.recv(), 10)
    assert info.value.rcvd is not None
    return info.value.rcvd.code, info.value.rcvd.reason


def twilio_media(n: int) -> str:
    payload = base64.b64encode(b"\xff" * 160).decode()  # 20 ms of μ-law
    return json.dumps({"event": "media", "media": {"payload": payload, "chunk": str(n)}})


async def test_twilio_flood_forwards_at_most_the_slack_then_closes_1008() -> None:
    call, closed_before = Counting(), PACING.calls_closed
    clock = ManualClock(1000.0)  # never advanced: no real time passes during the flood
    async with (
        await serve_twilio(call, port=0, token=TOKEN, clock=clock) as endpoint,
        connect(endpoint.url, logger=QUIET) as ws,
    ):
        await ws.send(json.dumps({"event": "start", "start": {"streamSid": "MZ1"}}))
        for n in range(1000):  # 20 s of audio at once
            await ws.send(twilio_media(n))
        code, reason = await close_code(ws)
    assert code == 1008 and "faster than real time" in reason
    assert call.seconds == pytest.approx(2.0, abs=0.02)  # the slack, not 20 s
    assert PACING.calls_closed == closed_before + 1


async def test_twilio_audio_at_real_time_is_all_forwarded() -> None:
    call = Counting()
    clock = ManualClock(1000.0)
    async with (
        await serve_twilio(call, port=0, token=TOKEN, clock=clock) as endpoint,
        connect(endpoint.url, logger=QUIET) as ws,
    ):
        await ws.send(json.dumps({"event": "start", "start": {"streamSid": "MZ1"}}))
        for n in range(400):  # 8 s, each frame sent once its time has come
            await ws.send(twilio_media(n))
            await call.reached((n + 1) * 160)  # the server took it (at the clock's time)
            await clock.advance(0.02, settle_rounds=0)
        await ws.send(json.dumps({"event": "stop", "stop": {}}))
        code, _ = await close_code(ws)
    assert code == 1000
    assert call.seconds == pytest.approx(8.0, abs=0.02)


async def test_playground_flood_forwards_at_most_the_slack_then_closes_1008() -> None:
    call = Counting()
    clock = ManualClock(1000.0)
    endpoint = await serve_playground(call, port=0, token=TOKEN, clock=clock)
    async with endpoint:
        origin = f"http://127.0.0.1:{endpoint.port}"
        url = f"ws://127.0.0.1:{endpoint.port}/ws?token={TOKEN}"
        async with connect(url, origin=origin, logger=QUIET) as ws:  # type: ignore[arg-type]
            assert json.loads(await ws.recv())["type"] == "hello"
            await ws.send(json.dumps({"type": "ready"}))
            await asyncio.wait_for(call.started.wait(), 10)
            frame = b"\x00\x01" * 480  # 20 ms at 24 kHz
            for _ in range(1000):
                await ws.send(frame)
            code, reason = await close_code(ws)
    assert code == 1008 and "faster than real time" in reason
    assert call.seconds == pytest.approx(2.0, abs=0.02)
