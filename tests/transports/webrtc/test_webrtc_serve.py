"""`vocalis serve --webrtc` as a user starts it: the page carries the WebRTC client, the offer
route is token-protected, refuses what is not an offer, and answers a real one with Opus."""

from __future__ import annotations

import asyncio
import json
import signal
import urllib.error
import urllib.request

from aiortc import RTCPeerConnection

from serve_support import kill_if_running, read_until, start_serve


def post(url: str, body: bytes, origin: str | None = None) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json"}
    if origin is not None:
        headers["Origin"] = origin
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


async def post_an_offer(url: str) -> tuple[int, bytes]:
    """An app's offer (audio both ways, a data channel); no Origin, the token only."""
    pc = RTCPeerConnection()
    try:
        pc.addTransceiver("audio", direction="sendrecv")
        pc.createDataChannel("vocalis")
        await pc.setLocalDescription(await pc.createOffer())
        offer = json.dumps({"type": "offer", "sdp": pc.localDescription.sdp}).encode()
        return await asyncio.to_thread(post, url, offer)
    finally:
        await pc.close()


def test_serve_webrtc_page_and_offer_route() -> None:
    proc = start_serve("examples/minimal_agent.py:agent", "--webrtc", "--port", "0")
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        url = read_until(proc.stdout, r"playground \(WebRTC\): open (\S+)", lines).group(1)
        read_until(proc.stdout, r"Ctrl-C to stop", lines)
        with urllib.request.urlopen(url, timeout=10) as response:
            assert b"window.VocalisWebRTC = VocalisWebRTC" in response.read()
        base, _, query = url.partition("/?")
        offer_url = f"{base}/webrtc/offer?{query}"

        assert post(f"{base}/webrtc/offer", b"{}")[0] == 403  # no token
        assert post(offer_url, b"{}", origin="http://evil.example")[0] == 403
        assert post(offer_url, b"not json", origin=base)[0] == 400  # the page's own origin
        status, body = post(offer_url, json.dumps({"type": "answer", "sdp": "v=0"}).encode())
        assert status == 400 and b"offer" in body

        status, body = asyncio.run(post_an_offer(offer_url))
        assert status == 200, body
        answer = json.loads(body)
        assert answer["type"] == "answer" and "opus/48000" in answer["sdp"]
        assert "a=candidate:" in answer["sdp"]  # every candidate in the answer, no trickle
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        finally:
            kill_if_running(proc)
    assert proc.returncode == 0, "".join(lines)
