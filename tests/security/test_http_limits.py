"""The HTTP layer in front of authentication (issue #14, items 3, 4 and 9).

Each test is an attacker's move against a real Twilio endpoint behind the fleet worker (as
`vocalis serve --twilio` runs it), over loopback raw sockets: slow handshakes, floods from many
addresses, oversized heads, made-up methods, duplicated security headers, pipelining, spoofed
proxy headers. Outcomes are observed as HTTP answers and closed connections, never timings.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import pytest
from http_client import closed_by_server, get, open_raw, read_reply, request
from websockets.asyncio.client import connect

from serve_support import REPO, kill_if_running, read_until
from vocalis.transports._web import ServedEndpoint
from vocalis.transports.twilio import TwilioTransport, serve_twilio
from vocalis.transports.web import HttpLimits, TrustedProxies
from vocalis.worker import Worker

TOKEN = "http-limits-token-Hq4Lm8"
QUIET = logging.getLogger("tests.security.http.client")
QUIET.propagate = False


class Calls:
    def __init__(self) -> None:
        self.started = asyncio.Event()

    async def __call__(self, transport: TwilioTransport) -> None:
        self.started.set()
        await transport.wait_closed()


@asynccontextmanager
async def twilio(
    limits: HttpLimits | None = None, trusted: TrustedProxies | None = None, **worker: float
) -> AsyncIterator[tuple[ServedEndpoint, Calls]]:
    calls = Calls()
    async with Worker(**worker) as gate:  # type: ignore[arg-type]
        endpoint = await serve_twilio(
            calls, port=0, token=TOKEN, gate=gate, limits=limits, trusted=trusted
        )
        async with endpoint:
            yield endpoint, calls


async def start_a_call(endpoint: ServedEndpoint, calls: Calls) -> None:
    """A legitimate Twilio stream gets in and its call starts."""
    start = {
        "event": "start",
        "streamSid": "MZ0000",
        "start": {"streamSid": "MZ0000", "mediaFormat": {"encoding": "audio/x-mulaw"}},
    }
    async with connect(endpoint.url, logger=QUIET, open_timeout=10) as ws:
        await ws.send(json.dumps(start))
        payload = base64.b64encode(b"\xff" * 160).decode()
        await ws.send(json.dumps({"event": "media", "media": {"payload": payload}}))
        await asyncio.wait_for(calls.started.wait(), 10)


PARTIAL_HEAD = b"GET /twilio/guess HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "


# --------------------------------------------------------------------------- item 3


async def test_slow_handshake_flood_cannot_starve_health_checks_or_calls() -> None:
    limits = HttpLimits(handshakes_per_address=4, max_pending_handshakes=16, header_timeout_s=60)
    async with twilio(limits) as (endpoint, calls), AsyncExitStack() as stack:
        port = endpoint.port
        # One address: its fifth unfinished handshake is closed at once.
        mine = [await open_raw(port, "127.0.0.1") for _ in range(5)]
        for _reader, writer in mine:
            stack.callback(writer.close)
            writer.write(PARTIAL_HEAD)
        assert await closed_by_server(mine[-1][0])
        # Many addresses (4 each, 40 in all): the total stays at 16, oldest dropped first.
        flood = []
        for host in range(2, 12):
            for _ in range(4):
                reader, writer = await open_raw(port, f"127.0.0.{host}")
                stack.callback(writer.close)
                writer.write(PARTIAL_HEAD)
                flood.append(reader)
        assert await closed_by_server(mine[0][0])  # the oldest went first
        assert endpoint.server.guard.book.pending() <= 16
        # Health checks and a real call still get in, from fresh addresses.
        health = await request(port, get("/healthz"), source="127.0.0.200")
        assert health.status == 200
        live = await request(port, get("/livez"), source="127.0.0.201")
        assert live.status == 200
        await start_a_call(endpoint, calls)
        closed = endpoint.server.guard.closed
        assert closed["per_address"] >= 1 and closed["evicted"] >= 24


async def test_a_head_that_never_completes_is_closed() -> None:
    async with twilio(HttpLimits(header_timeout_s=0.2)) as (endpoint, _calls):
        reader, writer = await open_raw(endpoint.port)
        writer.write(PARTIAL_HEAD)
        assert await closed_by_server(reader)
        writer.close()
        # The same holds for the next request on a kept-alive connection.
        reader, writer = await open_raw(endpoint.port)
        writer.write(get("/livez"))
        assert (await read_reply(reader)).status == 200
        writer.write(PARTIAL_HEAD)
        assert await closed_by_server(reader)
        writer.close()
        assert endpoint.server.guard.closed["head_timeout"] == 2


# --------------------------------------------------------------------------- item 9


async def test_oversized_heads_get_431() -> None:
    async with twilio() as (endpoint, _calls):
        big = await request(endpoint.port, get("/healthz", "X-Big: " + "a" * 9000))
        assert big.status == 431
        many = [f"X-H{i}: v" for i in range(70)]
        assert (await request(endpoint.port, get("/healthz", *many))).status == 431
        megabyte = get("/healthz", *(f"X-{i}: " + "b" * 1000 for i in range(1000)))
        assert (await request(endpoint.port, megabyte)).status == 431


@pytest.mark.parametrize(
    ("method", "status"),
    [("POST", 405), ("DELETE", 405), ("PUT", 405), ("TRACE", 501), ("BREW", 501)],
)
async def test_wrong_methods_are_refused(method: str, status: int) -> None:
    async with twilio() as (endpoint, _calls):
        reply = await request(endpoint.port, get("/healthz", "Content-Length: 0", method=method))
        assert reply.status == status
        if status == 405:
            assert "GET" in reply.headers["allow"]


async def test_head_answers_without_a_body() -> None:
    async with twilio() as (endpoint, _calls):
        reader, writer = await open_raw(endpoint.port)
        writer.write(get("/healthz", "Connection: close", method="HEAD"))
        reply = await read_reply(reader, head_only=True)
        assert reply.status == 200 and int(reply.headers["content-length"]) > 0
        assert await reader.read() == b""  # no body follows, the server closed
        writer.close()


@pytest.mark.parametrize(
    "headers",
    [
        ["Host: 127.0.0.1"],  # a second Host
        ["Origin: http://a.example", "Origin: http://b.example"],
        ["X-Real-IP: 10.0.0.1", "X-Real-IP: 10.0.0.2"],
        ["X-Forwarded-For: 10.0.0.1", "X-Forwarded-For: 10.0.0.2"],
        ["X-Forwarded-For: １２７.0.0.1"],  # full-width digits
        ["X-Real-IP: not-an-address"],
        ["Origin: javascript:alert(1)"],
    ],
    ids=["host", "origin", "real-ip", "fwd-for", "fwd-fullwidth", "bad-real-ip", "bad-origin"],
)
async def test_duplicate_or_malformed_critical_headers_get_400(
    headers: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    async with twilio() as (endpoint, _calls):
        for path in ("/healthz", f"/twilio/{TOKEN}"):
            upgrade = ["Upgrade: websocket", "Connection: Upgrade"] if "twilio" in path else []
            raw = get(path, *upgrade, *headers)
            reply = await request(endpoint.port, raw)
            assert reply.status == 400, path
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_pipelined_requests_are_answered_in_order(caplog: pytest.LogCaptureFixture) -> None:
    async with twilio() as (endpoint, _calls):
        reader, writer = await open_raw(endpoint.port)
        writer.write(get("/livez") + get("/healthz") + get("/nope"))
        statuses = [(await read_reply(reader)).status for _ in range(3)]
        assert statuses == [200, 200, 404]
        writer.close()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# --------------------------------------------------------------------------- item 4


async def test_proxy_headers_from_an_untrusted_peer_are_ignored() -> None:
    async with twilio(attempt_burst=1, attempts_per_s=0.01) as (endpoint, _calls):
        # (A plain GET of the socket path is a 404; it still counts as an attempt.)
        first = get("/twilio/guess", "X-Forwarded-For: 10.0.0.1")
        assert (await request(endpoint.port, first)).status == 404
        # Rotating X-Forwarded-For or X-Real-IP does not make a new client.
        rotated = get("/twilio/guess", "X-Forwarded-For: 10.0.0.2", "X-Real-IP: 10.0.0.3")
        assert (await request(endpoint.port, rotated)).status == 429


async def test_rotating_x_real_ip_behind_a_trusted_proxy_does_not_bypass_the_limit() -> None:
    trusted = TrustedProxies(["127.0.0.1"])
    async with twilio(trusted=trusted, attempt_burst=1, attempts_per_s=0.01) as (endpoint, _):
        for k, expected in enumerate((404, 429, 429)):
            raw = get("/twilio/guess", "X-Forwarded-For: 10.9.9.9", f"X-Real-IP: 10.1.1.{k}")
            assert (await request(endpoint.port, raw)).status == expected
        # Another client behind the same proxy is its own bucket.
        other = get("/twilio/guess", "X-Forwarded-For: 10.0.0.1, 10.9.9.8")
        assert (await request(endpoint.port, other)).status == 404


# --------------------------------------------------------------------------- item 3, end to end

SERVE_WITH_FEW_FDS = """
import resource, sys
resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
from vocalis.cli import main
sys.exit(main(sys.argv[1:]))
"""


def serve_with_few_fds() -> subprocess.Popen[str]:
    command = ["serve", "examples/minimal_agent.py:agent", "--twilio", "--port", "0"]
    return subprocess.Popen(
        [sys.executable, "-c", SERVE_WITH_FEW_FDS, *command, "--admin-port", "0", "--offline"],
        cwd=REPO,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "VOCALIS_TOKEN": TOKEN},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


async def test_serve_keeps_probes_and_calls_alive_under_a_flood_bigger_than_its_fd_limit() -> None:
    """`vocalis serve` with 256 file descriptors against 320 slow handshakes from 40 addresses:
    /livez on the admin port, /healthz on the call port and a real call all still work."""
    proc = await asyncio.to_thread(serve_with_few_fds)
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        out = proc.stdout
        url = (await asyncio.to_thread(read_until, out, r'Stream url="(\S+)"', lines)).group(1)
        admin = await asyncio.to_thread(read_until, out, r"admin: http://[^:]+:(\d+)/", lines)
        await asyncio.to_thread(read_until, out, r"Ctrl-C to stop", lines)
        port = int(url.split(":")[2].split("/")[0])
        admin_port = int(admin.group(1))
        async with AsyncExitStack() as stack:
            for host in range(2, 42):
                for _ in range(8):
                    _reader, writer = await open_raw(port, f"127.0.1.{host}")
                    stack.callback(writer.close)
                    writer.write(PARTIAL_HEAD)
            assert (await request(admin_port, get("/livez"), source="127.0.2.1")).status == 200
            assert (await request(port, get("/healthz"), source="127.0.2.2")).status == 200
            start = {"event": "start", "streamSid": "MZ1", "start": {"streamSid": "MZ1"}}
            real = url.replace("<VOCALIS_TOKEN>", TOKEN)
            async with connect(real, logger=QUIET, open_timeout=10) as ws:
                await ws.send(json.dumps(start))
                await asyncio.to_thread(read_until, out, r"call 1.* connected", lines)
    finally:
        proc.terminate()
        await asyncio.to_thread(proc.wait, 30)
        kill_if_running(proc)


async def test_refused_handshakes_log_nothing_above_info(caplog: pytest.LogCaptureFixture) -> None:
    """Each refused WebSocket handshake used to log an ERROR ("returned without completing
    handshake"): an unauthenticated peer could fill the operator's log."""
    from websockets.exceptions import InvalidStatus

    async with twilio(attempt_burst=2, attempts_per_s=0.01) as (endpoint, _calls):
        for _ in range(3):  # 403, 403, then 429
            with pytest.raises(InvalidStatus):
                async with connect(f"ws://127.0.0.1:{endpoint.port}/twilio/wrong", logger=QUIET):
                    pass
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
