"""`WebRTCEndpoint` with real aiortc peers as callers (no browser): the call's life, the data
channel protocol, the caller's microphone, and the limits (offers, sessions, handshakes)."""

from __future__ import annotations

import asyncio
import fractions
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import av
import numpy as np
import pytest
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCDataChannel,
    RTCPeerConnection,
    RTCSessionDescription,
)

from vocalis.transports.base import Transport
from vocalis.transports.webrtc import (
    IceServer,
    OfferRefused,
    WebRTCEndpoint,
    WebRTCLimits,
    WebRTCTransport,
)


class ToneTrack(MediaStreamTrack):
    """A caller's microphone: a 440 Hz tone, 20 ms frames at 48 kHz, paced in real time."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._n = 0
        self._t0: float | None = None

    async def recv(self) -> av.AudioFrame:
        loop = asyncio.get_running_loop()
        if self._t0 is None:
            self._t0 = loop.time()
        await asyncio.sleep(max(0.0, self._t0 + self._n * 0.02 - loop.time()))
        t = (np.arange(960) + self._n * 960) / 48000
        pcm = (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = 48000
        frame.pts = self._n * 960
        frame.time_base = fractions.Fraction(1, 48000)
        self._n += 1
        return frame


@dataclass
class Caller:
    pc: RTCPeerConnection
    channel: RTCDataChannel
    received: list[dict[str, Any]] = field(default_factory=list)
    got: asyncio.Event = field(default_factory=asyncio.Event)

    def send(self, message: dict[str, object]) -> None:
        self.channel.send(json.dumps(message))

    async def wait_for(self, kind: str) -> dict[str, Any]:
        while True:
            for message in self.received:
                if message["type"] == kind:
                    return message
            self.got.clear()
            await self.got.wait()


async def offer(pc: RTCPeerConnection) -> dict[str, str]:
    await pc.setLocalDescription(await pc.createOffer())
    return {"type": "offer", "sdp": pc.localDescription.sdp}


@pytest.fixture
async def callers() -> AsyncIterator[Callable[[WebRTCEndpoint], Any]]:
    made: list[RTCPeerConnection] = []

    async def call(endpoint: WebRTCEndpoint, *, microphone: bool = True, **kwargs: Any) -> Caller:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))  # no public STUN server
        made.append(pc)
        channel = pc.createDataChannel("vocalis")
        caller = Caller(pc, channel)

        def on_message(raw: str) -> None:
            caller.received.append(json.loads(raw))
            caller.got.set()

        channel.on("message", on_message)
        opened = asyncio.Event()
        channel.on("open", opened.set)
        if microphone:
            pc.addTrack(ToneTrack())
        else:
            pc.addTransceiver("audio", direction="recvonly")
        answer = await endpoint.answer(await offer(pc), **kwargs)
        await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))
        await asyncio.wait_for(opened.wait(), 20)
        return caller

    yield call
    for pc in made:
        await pc.close()


async def test_a_call_from_ready_to_hangup(callers: Any) -> None:
    transports: list[WebRTCTransport] = []
    typed: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    ended = asyncio.Event()

    async def on_call(transport: Transport) -> None:
        assert isinstance(transport, WebRTCTransport)
        transports.append(transport)
        loud = 0
        async for frame in transport.audio_in.frames(24000):
            if int(np.abs(frame.samples.astype(np.int32)).max()) > 4000:
                loud += 1
            if loud >= 10:
                break
        typed.set_result(await anext(transport.text_in()))
        transport.text_out.notice("hello caller")
        await transport.wait_closed()

    endpoint = WebRTCEndpoint(on_call)
    caller = await callers(endpoint, on_end=ended.set)
    caller.send({"type": "ready", "metadata": {"caller": "alice", "plan": "gold"}})
    caller.send({"type": "text", "text": "  hi there  "})
    assert await asyncio.wait_for(typed, 20) == "hi there"  # after the microphone's tone
    assert (await asyncio.wait_for(caller.wait_for("notice"), 20))["message"] == "hello caller"
    caller.send({"type": "hangup"})
    await asyncio.wait_for(ended.wait(), 20)
    assert endpoint.live == 0 and transports[0].hung_up and transports[0].protocol_errors == 0
    # The sink learned aiortc's RTP timestamp origin (without it no report could be mapped).
    assert transports[0].sink.track.rtp_origin is not None
    info = transports[0].call_info
    assert (info.transport, info.caller, info.parameters["plan"]) == ("webrtc", "alice", "gold")
    await endpoint.aclose()


async def test_a_protocol_violation_ends_the_call(callers: Any) -> None:
    transports: list[WebRTCTransport] = []
    started = asyncio.Event()
    ended = asyncio.Event()

    async def on_call(transport: Transport) -> None:
        assert isinstance(transport, WebRTCTransport)
        transports.append(transport)
        started.set()
        await transport.wait_closed()

    endpoint = WebRTCEndpoint(on_call)
    caller = await callers(endpoint, on_end=ended.set)
    caller.send({"type": "ready"})
    await asyncio.wait_for(started.wait(), 20)
    caller.send({"type": "pos", "rtp": -1})
    await asyncio.wait_for(ended.wait(), 20)
    assert transports[0].protocol_errors == 1 and endpoint.live == 0


async def test_an_offer_that_never_gets_ready_releases_its_slot(callers: Any) -> None:
    calls: list[Transport] = []
    ended = asyncio.Event()

    async def on_call(transport: Transport) -> None:
        calls.append(transport)

    endpoint = WebRTCEndpoint(on_call, limits=WebRTCLimits(handshake_timeout_s=1.0))
    await callers(endpoint, on_end=ended.set)  # connected, but the page never says `ready`
    await asyncio.wait_for(ended.wait(), 20)
    assert calls == [] and endpoint.live == 0


async def test_offers_are_checked_and_sessions_limited(callers: Any) -> None:
    async def on_call(transport: Transport) -> None:
        await transport.wait_closed()

    endpoint = WebRTCEndpoint(on_call, limits=WebRTCLimits(max_sessions=1))
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("audio")  # no data channel
    no_channel = await offer(pc)
    await pc.close()
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("audio")
    pc.addTransceiver("video")  # a track we would have to decode for nothing
    pc.createDataChannel("vocalis")
    with_video = await offer(pc)
    await pc.close()
    bad: list[tuple[object, int]] = [
        ("not an object", 400),
        ({"type": "answer", "sdp": "v=0\r\n"}, 400),
        ({"type": "offer", "sdp": 42}, 400),
        (no_channel, 400),
        (with_video, 400),
        # aiortc's own parser fails on these (an AssertionError inside it): still a 400.
        ({"type": "offer", "sdp": "v=0\r\nm=audio x\r\nm=application y\r\n"}, 400),
        ({"type": "offer", "sdp": "v=0\r\n" + "a=x\r\n" * 20000}, 413),
    ]
    for body, status in bad:
        with pytest.raises(OfferRefused) as refused:
            await endpoint.answer(body)
        assert refused.value.status == status
    assert endpoint.live == 0
    caller = await callers(endpoint)
    with pytest.raises(OfferRefused) as refused:
        await callers(endpoint)
    assert refused.value.status == 503 and endpoint.refused == 1 and endpoint.live == 1
    caller.send({"type": "hangup"})
    await endpoint.aclose()
    assert endpoint.live == 0
    with pytest.raises(OfferRefused):
        await callers(endpoint)  # closed: no new calls


async def test_a_listen_only_caller_still_gets_the_agent(callers: Any) -> None:
    """A page without a microphone offers a receive-only audio track: the call runs, the
    agent's audio goes out, typed text comes in."""
    typed: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def on_call(transport: Transport) -> None:
        assert isinstance(transport, WebRTCTransport)
        typed.set_result(await anext(transport.text_in()))
        await transport.wait_closed()

    endpoint = WebRTCEndpoint(on_call)
    caller = await callers(endpoint, microphone=False)
    caller.send({"type": "ready"})
    caller.send({"type": "text", "text": "no mic here"})
    assert await asyncio.wait_for(typed, 20) == "no mic here"
    assert "a=sendonly" in caller.pc.remoteDescription.sdp  # the agent's audio, ours not
    await endpoint.aclose()


def test_ice_server_urls() -> None:
    assert IceServer.from_url("stun:stun.example.org:3478").to_browser() == {
        "urls": ["stun:stun.example.org:3478"]
    }
    turn = IceServer.from_url("turns:turn.example.org:443", username="u", credential="c")
    assert turn.to_browser() == {
        "urls": ["turns:turn.example.org:443"],
        "username": "u",
        "credential": "c",
    }
    for bad in ("http://stun.example.org", "stun:", "stun:a b", "turn:turn.example.org"):
        with pytest.raises(ValueError):
            IceServer.from_url(bad)  # the last one: TURN without credentials


async def test_offers_at_the_same_time_count_against_the_limit(callers: Any) -> None:
    """Two offers answered concurrently with room for one call: one is refused (an offer
    being answered already holds its place)."""

    async def on_call(transport: Transport) -> None:
        await transport.wait_closed()

    endpoint = WebRTCEndpoint(on_call, limits=WebRTCLimits(max_sessions=1))
    outcomes = await asyncio.gather(callers(endpoint), callers(endpoint), return_exceptions=True)
    refused = [o for o in outcomes if isinstance(o, OfferRefused)]
    assert len(refused) == 1 and refused[0].status == 503
    await endpoint.aclose()
