"""Every refusal of the network endpoints (browser playground, Twilio Media Streams).

Each case is an attacker's or a broken client's move, and the test checks that it is refused
the documented way, before it costs anything: no call handler runs, no realtime session starts.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from vocalis.transports.playground import PlaygroundTransport, serve_playground
from vocalis.transports.twilio import TwilioTransport, serve_twilio

TOKEN = "endpoint-token-Qw3Er5Ty7"
QUIET = logging.getLogger("tests.security.endpoints.client")
QUIET.propagate = False


class Calls:
    """The endpoint's call handler: counts calls, holds each until the caller hangs up."""

    def __init__(self) -> None:
        self.started = 0

    async def __call__(self, transport: PlaygroundTransport | TwilioTransport) -> None:
        self.started += 1
        await transport.wait_closed()


async def refused_status(url: str, **kwargs: Any) -> tuple[int, bytes]:
    with pytest.raises(InvalidStatus) as info:
        async with connect(url, logger=QUIET, **kwargs):
            pass
    return info.value.response.status_code, bytes(info.value.response.body)


async def closed_with(ws: ClientConnection) -> tuple[int, str]:
    with pytest.raises(ConnectionClosed) as info:
        while True:
            await asyncio.wait_for(ws.recv(), 10)
    frame = info.value.rcvd
    assert frame is not None, "closed without a close frame"
    return frame.code, frame.reason


# --------------------------------------------------------------------------- playground


async def playground(calls: Calls) -> Any:
    return await serve_playground(calls, port=0, token=TOKEN)


@pytest.mark.parametrize(
    ("query", "origin", "why"),
    [
        ("", "same", "no token"),
        ("?token=wrong", "same", "wrong token"),
        (f"?token={TOKEN[:-1]}", "same", "token prefix"),
        (f"?token={TOKEN}x", "same", "token with a suffix"),
        (f"?token={TOKEN}", "http://evil.example", "cross-origin page"),
        (f"?token={TOKEN}", "null", "sandboxed iframe / file:// origin"),
        (f"?token={TOKEN}", None, "no Origin header"),
    ],
)
async def test_playground_socket_refusals(query: str, origin: str | None, why: str) -> None:
    calls = Calls()
    async with await playground(calls) as endpoint:
        own = f"http://127.0.0.1:{endpoint.port}"
        status, body = await refused_status(
            f"ws://127.0.0.1:{endpoint.port}/ws{query}",
            origin=own if origin == "same" else origin,
        )
        assert status == 403, why
        assert TOKEN.encode() not in body
        assert calls.started == 0


async def open_playground(port: int) -> ClientConnection:
    ws = await connect(
        f"ws://127.0.0.1:{port}/ws?token={TOKEN}",
        origin=f"http://127.0.0.1:{port}",  # type: ignore[arg-type]
        logger=QUIET,
    )
    assert json.loads(await ws.recv())["type"] == "hello"
    await ws.send(json.dumps({"type": "ready"}))
    return ws


@pytest.mark.parametrize(
    ("message", "code", "reason_words"),
    [
        (b"\x00" * (70 * 1024), 1009, ""),  # a frame above the socket's 64 KiB limit
        (b"\x00" * 40_000, 1008, "audio message"),  # above the per-message audio bound
        (b"\x00" * 7, 1008, "even"),  # half a sample
        ("x" * 20_000, 1008, "exceeds"),  # JSON above 16 KiB
        ("{not json", 1008, "JSON"),
        ("[1, 2]", 1008, "JSON object"),
        (json.dumps({"type": "text", "text": "a" * 2001}), 1008, "'text'"),
        (json.dumps({"type": "pos", "n": -1, "played": 0}), 1008, "non-negative"),
        (json.dumps({"type": "cleared", "segments": [[1, 2]] * 1001}), 1008, "bounded"),
        (json.dumps({"type": "rm -rf"}), 1008, "unknown message type"),
    ],
    ids=[
        "frame-too-big",
        "audio-too-big",
        "odd-audio",
        "json-too-big",
        "broken-json",
        "not-an-object",
        "text-too-long",
        "negative-position",
        "unbounded-list",
        "unknown-type",
    ],
)
async def test_playground_message_refusals(
    message: str | bytes, code: int, reason_words: str
) -> None:
    calls = Calls()
    async with await playground(calls) as endpoint:
        ws = await open_playground(endpoint.port)
        await ws.send(message)
        got_code, reason = await closed_with(ws)
        assert got_code == code
        assert reason_words in reason
        assert len(reason) <= 123  # a close reason is bounded (never echoes the input)


async def test_playground_page_needs_the_token() -> None:
    import urllib.error
    import urllib.request

    calls = Calls()
    async with await playground(calls) as endpoint:
        for path in ("/", "/?token=wrong", "/index.html"):
            url = f"http://127.0.0.1:{endpoint.port}{path}"
            with pytest.raises(urllib.error.HTTPError) as info:
                await asyncio.to_thread(urllib.request.urlopen, url, timeout=5)
            assert info.value.code == 403
            info.value.close()  # release the socket (the server waits for it on shutdown)


# --------------------------------------------------------------------------- twilio


def start_message(**fmt: Any) -> str:
    media_format = {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1, **fmt}
    return json.dumps(
        {
            "event": "start",
            "streamSid": "MZ00000000000000000000000000000000",
            "start": {
                "streamSid": "MZ00000000000000000000000000000000",
                "mediaFormat": media_format,
            },
        }
    )


@pytest.mark.parametrize(
    "path",
    ["/twilio", "/twilio/wrong", f"/twilio/{TOKEN[:-1]}", "/twilio?token=nope", f"/x/{TOKEN}"],
)
async def test_twilio_token_refusals(path: str) -> None:
    calls = Calls()
    endpoint = await serve_twilio(calls, port=0, token=TOKEN)
    async with endpoint:
        status, body = await refused_status(f"ws://127.0.0.1:{endpoint.port}{path}")
        assert status in (403, 404)
        assert TOKEN.encode() not in body
        assert calls.started == 0


@pytest.mark.parametrize(
    ("first", "second", "code", "reason_words"),
    [
        ("x" * (70 * 1024), None, 1009, ""),
        ("not json", None, 1008, "JSON"),
        (json.dumps({"event": "media", "media": {"payload": "AAAA"}}), None, 1008, "start"),
        (start_message(encoding="audio/l16", sampleRate=16000), None, 1008, "unsupported"),
        (start_message(channels=2), None, 1008, "unsupported"),
        (
            start_message(),
            json.dumps({"event": "media", "media": {"payload": "A" * 30_000}}),
            1008,
            "too large",
        ),
        (
            start_message(),
            json.dumps({"event": "media", "media": {"payload": "!!notbase64!!"}}),
            1008,
            "base64",
        ),
        (start_message(), json.dumps({"event": "mark", "mark": {}}), 1008, "name"),
    ],
    ids=[
        "frame-too-big",
        "broken-json",
        "media-before-start",
        "wrong-codec",
        "stereo",
        "payload-too-large",
        "payload-not-base64",
        "mark-without-name",
    ],
)
async def test_twilio_message_refusals(
    first: str, second: str | None, code: int, reason_words: str
) -> None:
    calls = Calls()
    endpoint = await serve_twilio(calls, port=0, token=TOKEN)
    async with endpoint:
        async with connect(endpoint.url, logger=QUIET) as ws:
            await ws.send(first)
            if second is not None:
                await ws.send(second)
            got_code, reason = await closed_with(ws)
        assert got_code == code
        assert reason_words in reason
        assert calls.started == (1 if second is not None else 0)


async def test_twilio_valid_stream_is_accepted() -> None:
    """The control case: the same endpoint takes a well-formed stream."""
    calls = Calls()
    endpoint = await serve_twilio(calls, port=0, token=TOKEN)
    async with endpoint, connect(endpoint.url, logger=QUIET) as ws:
        await ws.send(start_message())
        payload = base64.b64encode(b"\xff" * 160).decode()
        await ws.send(json.dumps({"event": "media", "media": {"payload": payload}}))
        async with asyncio.timeout(10):
            while calls.started == 0:  # noqa: ASYNC110 - the call starts on the server task
                await asyncio.sleep(0.005)
        await ws.send(json.dumps({"event": "stop", "stop": {}}))
        code, _ = await closed_with(ws)
        assert code == 1000


# --------------------------------------------------------------------------- rate limit


@pytest.mark.parametrize("which", ["playground", "twilio"])
async def test_connection_attempts_are_rate_limited(which: str) -> None:
    """Behind the fleet worker (as `vocalis serve` runs them), a burst of attempts from one
    address — here token guesses — is followed by 429 even for the right token."""
    from vocalis.worker import Worker

    calls = Calls()
    async with Worker(attempt_burst=4, attempts_per_s=0.01) as worker:
        if which == "playground":
            endpoint = await serve_playground(calls, port=0, token=TOKEN, gate=worker)
        else:
            endpoint = await serve_twilio(calls, port=0, token=TOKEN, gate=worker)
        async with endpoint:
            base = f"ws://127.0.0.1:{endpoint.port}"
            origin = f"http://127.0.0.1:{endpoint.port}"
            good = f"{base}/ws?token={TOKEN}" if which == "playground" else endpoint.url
            bad = f"{base}/ws?token=guess" if which == "playground" else f"{base}/twilio/guess"
            for _ in range(4):
                status, _ = await refused_status(bad, origin=origin)
                assert status == 403
            status, body = await refused_status(good, origin=origin)
            assert status == 429 and b"Too Many Requests" in body
            assert calls.started == 0
