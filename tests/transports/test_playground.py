"""Playground server without a browser: access control and the page protocol (a fake page)."""

from __future__ import annotations

import asyncio
import json
import struct
import urllib.error
import urllib.request
from collections.abc import Callable
from email.message import Message

import numpy as np
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from vocalis.transports.base import PlayoutResult, PlayoutStatus
from vocalis.transports.playground import PlaygroundTransport, serve_playground


def http_get(url: str) -> tuple[int, Message, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


async def until(predicate: Callable[[], bool]) -> None:
    """Poll a condition on the event loop (the page's reports arrive over the socket)."""
    while True:
        if predicate():
            return
        await asyncio.sleep(0.005)


async def idle_call(transport: PlaygroundTransport) -> None:
    await transport.wait_closed()


async def test_page_and_socket_need_the_token_and_same_origin() -> None:
    endpoint = await serve_playground(idle_call, port=0, token="tok-123")
    async with endpoint:
        base = f"http://127.0.0.1:{endpoint.port}"
        status, headers, body = await asyncio.to_thread(http_get, endpoint.url)
        assert status == 200 and b"vocalis playground" in body
        assert "default-src 'none'" in headers["Content-Security-Policy"]
        assert headers["Referrer-Policy"] == "no-referrer"
        assert b"http://" not in body.replace(b"http://' +", b"")  # no external assets
        for url in (base + "/", base + "/?token=wrong", base + "/other/x"):
            status, _, body = await asyncio.to_thread(http_get, url)
            assert status in (403, 404) and b"tok-123" not in body

        ws_url = f"ws://127.0.0.1:{endpoint.port}/ws"
        good_origin = f"http://127.0.0.1:{endpoint.port}"
        for url, origin in [
            (ws_url + "?token=wrong", good_origin),
            (ws_url, good_origin),
            (ws_url + "?token=tok-123", "http://evil.example"),
            (ws_url + "?token=tok-123", None),
        ]:
            with pytest.raises(InvalidStatus) as info:
                async with connect(url, origin=origin):  # type: ignore[arg-type]
                    pass
            assert info.value.response.status_code == 403
        async with connect(ws_url + "?token=tok-123", origin=good_origin) as ws:  # type: ignore[arg-type]
            hello = json.loads(await ws.recv())
            assert hello == {"type": "hello", "sample_rate": 24000}
            await ws.send(json.dumps({"type": "ready"}))
            await ws.send(b"\x00" * 40_000)  # audio frame above the bound
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


async def test_fake_page_reports_drive_segment_results() -> None:
    results: asyncio.Queue[tuple[PlayoutResult, PlayoutResult, str, int]] = asyncio.Queue()

    async def on_call(transport: PlaygroundTransport) -> None:
        mic = 0
        async for frame in transport.audio_in.frames(16000):
            mic += frame.num_samples
            if mic >= 8000:
                break
        transport.text_out.agent_state("speaking")
        sink = transport.sink
        seg1 = sink.begin_segment("m1", 24000)
        seg2 = sink.begin_segment("m2", 24000)
        seg1.push(np.full(4800, 100, dtype=np.int16))  # 200 ms
        seg1.end()
        seg2.push(np.full(48000, 200, dtype=np.int16))  # 2 s
        seg2.end()
        r1 = await seg1.wait_for_playout()
        await until(lambda: seg2.played_ms >= 500)
        sink.clear()
        r2 = await seg2.wait_for_playout()
        text = await anext(transport.text_in())
        await results.put((r1, r2, text, mic))
        await transport.wait_closed()

    endpoint = await serve_playground(on_call, port=0)
    async with endpoint:
        url = f"ws://127.0.0.1:{endpoint.port}/ws?token={endpoint.token}"
        async with connect(url, origin=f"http://127.0.0.1:{endpoint.port}") as ws:  # type: ignore[arg-type]
            assert json.loads(await ws.recv())["type"] == "hello"
            await ws.send(json.dumps({"type": "ready"}))
            for _ in range(50):  # 1 s of microphone at 24 kHz, 20 ms frames
                await ws.send(np.zeros(480, dtype="<i2").tobytes())
            received: dict[int, int] = {}
            segments: dict[int, str] = {}
            while sum(received.values()) < 4800 + 48000:
                msg = await ws.recv()
                if isinstance(msg, bytes):
                    (n,) = struct.unpack_from("<I", msg)
                    received[n] = received.get(n, 0) + (len(msg) - 4) // 2
                else:
                    data = json.loads(msg)
                    if data["type"] == "segment":
                        segments[data["n"]] = data["id"]
            assert segments == {1: "m1", 2: "m2"}
            assert received == {1: 4800, 2: 48000}
            # The page plays m1 fully, then 520 ms of m2.
            await ws.send(json.dumps({"type": "started", "n": 1}))
            await ws.send(json.dumps({"type": "done", "n": 1, "played": 4800}))
            await ws.send(json.dumps({"type": "started", "n": 2}))
            await ws.send(json.dumps({"type": "pos", "n": 2, "played": 12000}))
            while True:
                data = json.loads(await ws.recv())
                if data["type"] == "clear":
                    break
            # A stale position (higher than where it stopped) is superseded by `cleared`.
            await ws.send(json.dumps({"type": "cleared", "segments": [[2, 12480]]}))
            await ws.send(json.dumps({"type": "text", "text": "  typed hello  "}))
            r1, r2, text, mic = await asyncio.wait_for(results.get(), 5)
            assert (r1.status, r1.played_ms) == (PlayoutStatus.FULL, 200.0)
            assert (r2.status, r2.played_ms, r2.pushed_ms) == (PlayoutStatus.PARTIAL, 520.0, 2000.0)
            assert text == "typed hello"
            assert mic >= 8000
            await ws.send(json.dumps({"type": "hangup"}))


async def test_clear_without_page_answer_uses_last_reported_position() -> None:
    from vocalis.transports._web import Outbox
    from vocalis.transports.playground.sink import PlaygroundAudioSink
    from vocalis.utils.clock import MonotonicClock

    sink = PlaygroundAudioSink(Outbox(), MonotonicClock(), clear_timeout_s=0.05)
    seg = sink.begin_segment("m", 24000)
    seg.push(np.zeros(24000, dtype=np.int16))
    sink.on_started(seg.n)
    sink.on_position(seg.n, 7200)
    sink.on_position(seg.n, 99_999)  # never beyond what was sent
    assert seg.played_ms == 1000.0
    sink.on_position(seg.n, 4800)  # positions never go back
    sink.clear()
    seg.push(np.zeros(2400, dtype=np.int16))  # dropped: the segment is being cleared
    result = await asyncio.wait_for(seg.wait_for_playout(), 1)
    assert (result.status, result.played_ms) == (PlayoutStatus.PARTIAL, 1000.0)
    assert sink.clear_timeouts == 1


async def test_a_page_that_stops_reporting_is_resolved_by_the_report_watchdog() -> None:
    """A frozen tab: the segment resolves from its last reported position after a bounded
    silence of reports, the page is told to stop, and the next segment works normally."""
    from vocalis.transports._web import Outbox
    from vocalis.transports.playground.sink import PlaygroundAudioSink
    from vocalis.utils.clock import ManualClock, settle

    clock = ManualClock()
    outbox = Outbox()
    sink = PlaygroundAudioSink(outbox, clock, report_timeout_s=2.0)
    seg = sink.begin_segment("m1", 24000)
    seg.push(np.zeros(48000, dtype=np.int16))  # 2 s sent to the page
    seg.end()
    sink.on_started(seg.n)
    for k in range(1, 11):  # the page reports every 50 ms for 0.5 s, then freezes
        await clock.advance(0.05)
        sink.on_position(seg.n, 1200 * k)
    await clock.advance(1.99)
    assert not seg.done  # 1.99 s of silence: still within the bound
    await clock.advance(0.02)
    result = await asyncio.wait_for(seg.wait_for_playout(), 1)
    assert (result.status, result.played_ms) == (PlayoutStatus.PARTIAL, 500.0)
    assert sink.report_timeouts == 1
    batch = await outbox.next_batch()
    assert batch is not None and '{"type":"clear"}' in batch
    # The next segment is independent of the frozen one.
    seg2 = sink.begin_segment("m2", 24000)
    seg2.push(np.zeros(2400, dtype=np.int16))
    seg2.end()
    sink.on_started(seg2.n)
    sink.on_done(seg2.n, 2400)
    assert (await seg2.wait_for_playout()).status is PlayoutStatus.FULL
    await settle()
    assert sink.report_timeouts == 1
    await sink.aclose()


async def test_a_reporting_page_never_trips_the_watchdog() -> None:
    """A live page reports every ~50 ms while it holds a started segment, also while starved
    (the provider is slow): no verdict is forced however long the segment lasts."""
    from vocalis.transports._web import Outbox
    from vocalis.transports.playground.sink import PlaygroundAudioSink
    from vocalis.utils.clock import ManualClock, settle

    clock = ManualClock()
    sink = PlaygroundAudioSink(Outbox(), clock, report_timeout_s=0.5)
    seg = sink.begin_segment("m", 24000)
    seg.push(np.zeros(2400, dtype=np.int16))  # 100 ms, then the provider is slow
    sink.on_started(seg.n)
    for _ in range(200):  # 10 s of reports stuck at the starved position
        await clock.advance(0.05)
        sink.on_position(seg.n, 2400)
    assert not seg.done and sink.report_timeouts == 0
    seg.push(np.zeros(2400, dtype=np.int16))
    seg.end()
    sink.on_done(seg.n, 4800)
    assert (await seg.wait_for_playout()).status is PlayoutStatus.FULL
    # Nothing owed any more: time passes without reports and nothing fires.
    await clock.advance(5.0)
    await settle()
    assert sink.report_timeouts == 0
    await sink.aclose()


async def test_page_messages_are_bounded_and_typed() -> None:
    """Every page message is checked before it touches the call (the socket closes 1008)."""
    from vocalis.transports.playground.transport import (
        MAX_AUDIO_BYTES,
        MAX_TEXT_CHARS,
        PlaygroundProtocolError,
    )
    from vocalis.utils.clock import ManualClock

    transport = PlaygroundTransport(ManualClock())
    bad = [
        "x" * (16 * 1024 + 1),  # JSON above 16 KiB
        "[[[[" * 5000,  # not JSON (nesting beyond the decoder's depth), not a crash
        '{"type": 3}',
        '{"type": "nope"}',
        json.dumps({"type": "text", "text": "a" * (MAX_TEXT_CHARS + 1)}),
        json.dumps({"type": "text", "text": "   "}),
        json.dumps({"type": "pos", "n": -1, "played": 0}),
        json.dumps({"type": "pos", "n": True, "played": 0}),
        json.dumps({"type": "cleared", "segments": [[1]]}),
        json.dumps({"type": "cleared", "segments": [[0, 0]] * 1001}),
    ]
    for raw in bad:
        with pytest.raises(PlaygroundProtocolError):
            transport.handle_text(raw)
    for data in (b"\x00" * (MAX_AUDIO_BYTES + 2), b"\x00" * 3):
        with pytest.raises(PlaygroundProtocolError):
            transport.handle_binary(data)
    transport.handle_text(json.dumps({"type": "text", "text": "a" * MAX_TEXT_CHARS}))
    assert await anext(transport.text_in()) == "a" * MAX_TEXT_CHARS
    transport.hang_up()
