"""WebRTC under packet loss: a UDP relay between Chromium and the server drops the server's
audio RTP (deterministically). The call goes on, and concealed audio is never counted as heard:
the browser's playout timestamp only moves with frames decoded from real packets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from browser_support import barge_in_wav, launched_chromium, until
from vocalis.audio.espeak import synthesize
from vocalis.audio.frame import AudioFrame
from vocalis.audio.wav import write_wav
from vocalis.transports.base import PlayoutResult, PlayoutStatus, Transport
from vocalis.transports.webrtc import WebRTCTransport, serve_webrtc

from .lossy_relay import LossyRelay
from .webrtc_call_support import check_heard_contract, sim_call, through_relay

pytestmark = pytest.mark.browser

INBOUND = """async () => { let s = null;
  (await window.vocalisWebRTC.receiver.getStats()).forEach((r) => {
    if (r.type === "inbound-rtp") s = r; });
  return s; }"""


@pytest.fixture
async def relay() -> AsyncIterator[LossyRelay]:
    relay = LossyRelay()
    await relay.start()
    try:
        yield relay
    finally:
        relay.close()


async def test_sim_call_with_one_packet_in_eight_lost(tmp_path: Path, relay: LossyRelay) -> None:
    relay.every = 8  # 12.5 % of the agent's audio packets never arrive
    call = await sim_call(barge_in_wav(tmp_path / "barge_in.wav"), relay)
    check_heard_contract(call)
    stats = call["stats"]
    print(
        f"WEBRTC-LOSS dropped {relay.dropped} of {relay.dropped + relay.forwarded} packets; "
        f"page lost {stats['packetsLost']}, concealed {stats['concealedSamples'] / 48:.0f} ms"
    )
    # The call ends once the provider has the truncate: ~380-400 of the agent's packets
    # (7.6-8 s) passed the relay, ~48 were dropped, and the page counted its losses.
    assert relay.dropped >= 40 and stats["packetsLost"] > 0 and stats["concealedSamples"] > 0


def rtp_after(a: int, b: int) -> int:
    """Signed distance a - b on the wrapping 32-bit RTP clock."""
    return (a - b + 2**31) % 2**32 - 2**31


async def test_concealment_during_an_outage_is_not_heard(tmp_path: Path, relay: LossyRelay) -> None:
    """All of the agent's audio is lost for a while, the browser conceals, the caller barges in
    during the outage: the message was heard only up to the last packet that arrived."""
    long = synthesize(
        "This message keeps going for a good while, so that the network can fail in the "
        "middle of it, and the caller can interrupt while the browser invents audio."
    )
    after = synthesize("I am back.")
    silent_mic = tmp_path / "silence.wav"
    write_wav(silent_mic, AudioFrame(np.zeros(48000 * 20, np.int16), 48000))
    outage = asyncio.Event()
    cut = asyncio.Event()
    results: asyncio.Future[tuple[PlayoutResult, PlayoutResult]] = (
        asyncio.get_running_loop().create_future()
    )

    async def on_call(transport: Transport) -> None:
        assert isinstance(transport, WebRTCTransport)
        try:
            sink = transport.audio_out
            seg = sink.begin_segment("long", 22050)
            seg.push(long.samples)
            seg.end()
            await until(lambda: seg.played_ms >= 1000)
            outage.set()
            await cut.wait()
            sink.clear()
            cut_result = await seg.wait_for_playout()
            relay.blackout = False  # the network is back: the call goes on
            next_seg = sink.begin_segment("after", 22050)
            next_seg.push(after.samples)
            next_seg.end()
            results.set_result((cut_result, await next_seg.wait_for_playout()))
        except BaseException as exc:
            if not results.done():
                results.set_exception(exc)
            raise
        await transport.wait_closed()

    served = await serve_webrtc(on_call, port=0)
    async with served, launched_chromium(silent_mic) as browser:
        page = await browser.new_page()
        await through_relay(page, relay)
        await page.goto(served.url)
        await page.click("#start")
        await page.wait_for_selector("body[data-audio=ready]", timeout=20_000)
        await asyncio.wait_for(outage.wait(), 30)
        relay.blackout = True
        before = (await page.evaluate(INBOUND))["concealedSamples"]
        while True:  # until half a second of invented audio has played
            if (await page.evaluate(INBOUND))["concealedSamples"] - before >= 24000:
                break
            await asyncio.sleep(0.02)
        last_arrived = relay.last_rtp_timestamp
        cut.set()
        cut_result, next_result = await asyncio.wait_for(results, 30)
        state = await page.evaluate("() => window.vocalisWebRTC.state")
        await page.click("#stop")

    assert last_arrived is not None
    [clear] = state["clears"]
    # The page's position at the cut is at most the last packet that arrived (its 20 ms).
    assert rtp_after(clear["rtp"], last_arrived) <= 0
    start = state["starts"]["1"]
    heard_ms = rtp_after(clear["rtp"], start) / 48
    arrived_ms = rtp_after(last_arrived, start) / 48 + 20
    assert cut_result.status is PlayoutStatus.PARTIAL
    assert cut_result.played_ms == pytest.approx(heard_ms, abs=0.05)
    # 500 ms of concealment played before the cut; none of it counted.
    assert 1000 <= cut_result.played_ms <= arrived_ms, (cut_result.played_ms, arrived_ms)
    print(
        f"WEBRTC-OUTAGE heard {cut_result.played_ms:.0f} ms; last packet ends at "
        f"{arrived_ms:.0f} ms; the page had played 500 ms of concealment by then"
    )
    assert next_result.status is PlayoutStatus.FULL
