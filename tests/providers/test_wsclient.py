"""Both WebSocket backends behave the same towards the provider session (#17).

Against real `websockets` servers on port 0: headers, refused handshakes, TLS with the
default trust store (`SSL_CERT_FILE`), whole messages (fragmented, binary), the 16 MiB-style
size limit and invalid text as a closed socket, the peer's close (with and without a code),
our close handshake, keepalive against a silent peer, the key never sent across origins.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import hashlib
import logging
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Request, Response
from websockets.server import ServerProtocol

from vocalis.providers.base import ErrorKind, OperationError, SessionOptions
from vocalis.providers.openai.realtime import OpenAIRealtimeModel
from vocalis.providers.wsclient import (
    HandshakeRejected,
    ProviderSocket,
    SocketBackend,
    SocketClosed,
    open_socket,
    resolve_backend,
)
from vocalis.sim.tls import ensure_local_certificate, server_ssl_context

pytestmark = pytest.mark.usefixtures("websocket_backend")

Handler = Callable[[ServerConnection], Awaitable[None]]
LOG = logging.getLogger("vocalis.tests.wsclient")


@asynccontextmanager
async def server(handler: Handler, **kwargs: object) -> AsyncIterator[int]:
    async with serve(handler, "127.0.0.1", 0, **kwargs) as srv:  # type: ignore[arg-type]
        yield srv.sockets[0].getsockname()[1]


async def opened(backend: SocketBackend, url: str, max_size: int = 2**20) -> ProviderSocket:
    return await open_socket(
        backend, url, {"Authorization": "Bearer k"}, open_timeout=5, max_size=max_size, logger=LOG
    )


async def received(sock: ProviderSocket) -> list[str | bytes]:
    got: list[str | bytes] = []
    async with asyncio.timeout(10):
        await sock.run(got.append)
    return got


async def keepalive_socket(
    backend: SocketBackend, srv: asyncio.Server, keepalive_s: float
) -> ProviderSocket:
    """A socket to a raw test server (`asyncio.start_server`) with a short keepalive."""
    port = srv.sockets[0].getsockname()[1]
    return await open_socket(
        backend,
        f"ws://127.0.0.1:{port}/x",
        {},
        open_timeout=5,
        max_size=2**20,
        logger=LOG,
        keepalive_s=keepalive_s,
    )


def test_the_fixture_picks_the_backend(websocket_backend: SocketBackend) -> None:
    model = OpenAIRealtimeModel(base_url="ws://127.0.0.1:1/v1", api_key="k")
    assert model.socket_backend == websocket_backend == resolve_backend()


async def test_headers_whole_messages_and_the_peers_close(websocket_backend: SocketBackend) -> None:
    seen: dict[str, str] = {}

    async def handler(ws: ServerConnection) -> None:
        assert ws.request is not None
        seen["auth"] = ws.request.headers["Authorization"]
        await ws.send("hello")
        await ws.send(["fragm", "ented é"])  # one message in three frames
        await ws.send(b"\x00\x01")
        seen["echo"] = str(await ws.recv())
        await ws.close(1000)

    async with server(handler) as port:
        sock = await opened(websocket_backend, f"ws://127.0.0.1:{port}/x")
        got: list[str | bytes] = []

        def on_message(message: str | bytes) -> None:
            got.append(message)
            if len(got) == 3:
                assert sock.write("ping back")

        async with asyncio.timeout(10):
            await sock.run(on_message)
        assert got == ["hello", "fragmented é", b"\x00\x01"]
        assert seen == {"auth": "Bearer k", "echo": "ping back"}
        assert not sock.write("late")
        with pytest.raises(SocketClosed):
            await sock.send("late")
        await sock.close()  # idempotent on a closed socket


async def test_our_close_is_a_close_handshake(websocket_backend: SocketBackend) -> None:
    codes: list[int | None] = []
    closed = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        async for _ in ws:
            pass
        codes.append(ws.close_code)
        closed.set()

    async with server(handler) as port:
        sock = await opened(websocket_backend, f"ws://127.0.0.1:{port}/x")
        await sock.send("one")
        await sock.close()
        async with asyncio.timeout(5):
            await closed.wait()
    assert codes == [1000]


@pytest.mark.parametrize(
    "payload",
    [["a" * 600, "b" * 600], b"\xff\xfe not utf-8"],
    ids=["fragments-over-the-limit", "invalid-text"],
)
async def test_a_bad_message_closes_the_socket_unseen(
    websocket_backend: SocketBackend, payload: list[str] | bytes
) -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send("before")
        if isinstance(payload, bytes):  # a text frame whose bytes are not UTF-8
            ws.protocol.send_text(payload)
            ws.send_data()
        else:
            await ws.send(payload)
        await ws.send("after")
        await asyncio.sleep(5)

    async with server(handler) as port:
        sock = await opened(websocket_backend, f"ws://127.0.0.1:{port}/x", max_size=1000)
        assert await received(sock) == ["before"]


async def test_an_error_in_the_consumer_ends_run(websocket_backend: SocketBackend) -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send("one")
        await ws.send("two")
        await asyncio.sleep(5)

    async with server(handler) as port:
        sock = await opened(websocket_backend, f"ws://127.0.0.1:{port}/x")
        got: list[str | bytes] = []

        def on_message(message: str | bytes) -> None:
            got.append(message)
            raise RuntimeError("consumer failed")

        with pytest.raises(RuntimeError, match="consumer failed"):
            async with asyncio.timeout(10):
                await sock.run(on_message)
        await sock.close()
        assert got == ["one"]


@pytest.mark.parametrize("status", [401, 503])
async def test_a_refused_handshake_names_its_status(
    websocket_backend: SocketBackend, status: int
) -> None:
    def refuse(connection: ServerConnection, request: Request) -> Response:
        return Response(status, "refused", Headers(), b"no")

    async def handler(ws: ServerConnection) -> None:
        raise AssertionError("never upgraded")

    async with server(handler, process_request=refuse) as port:
        with pytest.raises(HandshakeRejected) as refused:
            await opened(websocket_backend, f"ws://127.0.0.1:{port}/x")
        assert refused.value.status == status
        if status == 401:  # the session: a bad key is fatal at once, not retried
            model = OpenAIRealtimeModel(base_url=f"ws://127.0.0.1:{port}/v1", api_key="k")
            with pytest.raises(OperationError) as failed:
                await model.connect(SessionOptions())
            assert failed.value.kind is ErrorKind.FATAL


async def test_tls_uses_the_default_trust_store(
    websocket_backend: SocketBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert = ensure_local_certificate(tmp_path)

    async def handler(ws: ServerConnection) -> None:
        await ws.send("secure")

    async with server(handler, ssl=server_ssl_context(cert)) as port:
        url = f"wss://127.0.0.1:{port}/x"
        with pytest.raises(OSError):  # not trusted yet: certificate verification fails
            await opened(websocket_backend, url)
        monkeypatch.setenv("SSL_CERT_FILE", str(cert.cert_path))
        sock = await opened(websocket_backend, url)
        assert await received(sock) == ["secure"]


async def test_a_normal_socket_logs_nothing_at_info(
    websocket_backend: SocketBackend, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)

    async def handler(ws: ServerConnection) -> None:
        await ws.send("hi")

    async with server(handler) as port:
        sock = await opened(websocket_backend, f"ws://127.0.0.1:{port}/x")
        assert await received(sock) == ["hi"]
        await sock.close()
    # picows announces every socket at INFO; one line per call is noise, so it is DEBUG here.
    assert [r.getMessage() for r in caplog.records if r.name.startswith(LOG.name)] == []


async def test_a_close_without_a_code_is_answered_validly(websocket_backend: SocketBackend) -> None:
    answers: list[Close | None] = []
    answered = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        ws.protocol.send_close()  # a CLOSE frame with no status code (read as 1005)
        ws.send_data()
        await ws.wait_closed()
        answers.append(ws.protocol.close_rcvd)  # None: our answer was not a valid CLOSE
        answered.set()

    async with server(handler) as port:
        sock = await opened(websocket_backend, f"ws://127.0.0.1:{port}/x")
        assert await received(sock) == []
        await sock.close()
        async with asyncio.timeout(10):
            await answered.wait()
    assert answers[0] is not None and answers[0].code in (1000, 1005)


async def test_a_silent_peer_ends_run_by_keepalive(websocket_backend: SocketBackend) -> None:
    """A peer that completed the handshake and then answers nothing (a half-open TCP link):
    without keepalive `run()` would wait forever and the session would never reconnect."""
    guid = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
    done = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        key = next(
            line.split(b":", 1)[1].strip()
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        )
        accept = base64.b64encode(hashlib.sha1(key + guid).digest())
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        await done.wait()  # reads nothing, answers no ping
        writer.close()

    srv = await asyncio.start_server(silent, "127.0.0.1", 0)
    try:
        sock = await keepalive_socket(websocket_backend, srv, 0.2)
        assert await received(sock) == []  # ended (within the 10 s bound), not hanging
        await sock.close()
    finally:
        done.set()
        srv.close()


async def test_listen_hands_over_every_message_then_ends_once(
    websocket_backend: SocketBackend,
) -> None:
    """`listen()` (no awaiting caller): the same messages as `run()`, then `on_end` once."""

    async def handler(ws: ServerConnection) -> None:
        await ws.send("one")
        await ws.send(["t", "wo"])
        await ws.close(1000)

    got: list[str | bytes] = []
    ends: list[int] = []
    ended = asyncio.Event()

    def on_end() -> None:
        ends.append(len(got))
        ended.set()

    async with server(handler) as port:
        sock = await opened(websocket_backend, f"ws://127.0.0.1:{port}/x")
        sock.listen(got.append, on_end)
        async with asyncio.timeout(10):
            await ended.wait()
        await sock.close()
    assert got == ["one", "two"] and ends == [2]


async def test_a_failing_listener_closes_the_socket_and_still_ends(
    websocket_backend: SocketBackend,
) -> None:
    closed = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        await ws.send("boom")
        with contextlib.suppress(Exception):
            await ws.recv()  # until our side closes
        closed.set()

    def on_message(message: str | bytes) -> None:
        raise ValueError(message)

    ended = asyncio.Event()
    async with server(handler) as port:
        sock = await opened(websocket_backend, f"ws://127.0.0.1:{port}/x")
        sock.listen(on_message, ended.set)
        async with asyncio.timeout(10):
            await ended.wait()
            await closed.wait()
        await sock.close()


async def test_a_peer_answering_the_keepalive_keeps_the_socket(
    websocket_backend: SocketBackend,
) -> None:
    """Keepalive pings that are answered never end the socket, however quiet the peer: a
    real server protocol (`websockets`' sans-I/O, which answers pings) says one message
    after the third ping it saw, then closes."""
    pings = 0

    async def answering(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal pings
        protocol = ServerProtocol()
        while data := await reader.read(65536):
            protocol.receive_data(data)
            for event in protocol.events_received():
                if isinstance(event, Request):
                    protocol.send_response(protocol.accept(event))
                elif isinstance(event, Frame) and event.opcode is Opcode.PING:
                    pings += 1
                    if pings == 3:
                        protocol.send_text(b"still here")
                        protocol.send_close(1000)
            for chunk in protocol.data_to_send():
                writer.write(chunk)
            await writer.drain()
        writer.close()

    srv = await asyncio.start_server(answering, "127.0.0.1", 0)
    try:
        sock = await keepalive_socket(websocket_backend, srv, 0.05)
        assert await received(sock) == ["still here"]  # alive through three pings
        await sock.close()
    finally:
        srv.close()
    assert pings >= 3


async def test_the_key_never_follows_a_redirect_to_another_origin(
    websocket_backend: SocketBackend,
) -> None:
    seen: list[str | None] = []

    async def elsewhere(ws: ServerConnection) -> None:
        assert ws.request is not None
        seen.append(ws.request.headers.get("Authorization"))
        await ws.close()

    async def never(ws: ServerConnection) -> None:
        raise AssertionError("never upgraded")

    async with server(elsewhere) as other:  # 127.0.0.1 vs localhost: another origin

        def moved(connection: ServerConnection, request: Request) -> Response:
            return Response(302, "Found", Headers({"Location": f"ws://localhost:{other}/x"}), b"")

        async with server(never, process_request=moved) as port:
            try:
                sock = await opened(websocket_backend, f"ws://127.0.0.1:{port}/x")
            except HandshakeRejected as refused:  # picows: a redirect is refused
                assert refused.status == 302
            else:  # websockets: followed, without the credentials
                await sock.close()
                assert seen == [None]
    assert "Bearer k" not in seen


async def test_messages_either_side_of_the_copy_limit_arrive_whole(
    websocket_backend: SocketBackend,
) -> None:
    """picows frames a message over `COPY_LIMIT` in a buffer of its own: same bytes on the
    wire, by `write` and by `send`, in order (UTF-8 text included)."""
    messages = ["small", "é" * 3000 + "!", "y" * 200_000, "after"]
    got: list[str | bytes] = []

    async def handler(ws: ServerConnection) -> None:
        for _ in messages:
            got.append(await ws.recv())
        await ws.close(1000)

    async with server(handler, max_size=2**20) as port:
        sock = await opened(websocket_backend, f"ws://127.0.0.1:{port}/x")
        assert sock.write(messages[0])
        assert sock.write(messages[1])
        for message in messages[2:]:
            await sock.send(message)
        assert await received(sock) == []
    assert got == messages


async def test_a_large_message_leaves_no_buffer_behind(websocket_backend: SocketBackend) -> None:
    """#17: picows' write buffer grew to the largest message sent and kept it for the call."""
    if websocket_backend != "picows":
        pytest.skip("about picows' own write buffer")
    arrived = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        assert len(await ws.recv()) == 500_000
        arrived.set()
        await ws.wait_closed()

    async with server(handler, max_size=2**20) as port:
        sock = await opened(websocket_backend, f"ws://127.0.0.1:{port}/x")
        tracemalloc.start(30)  # deep enough to tell the test server's own allocations
        try:
            await sock.send("z" * 500_000)
            async with asyncio.timeout(10):
                await arrived.wait()
            gc.collect()
            ours = tracemalloc.take_snapshot().filter_traces(
                [tracemalloc.Filter(False, "*/websockets/*", all_frames=True)]
            )
        finally:
            tracemalloc.stop()
        await sock.close()
    assert sum(trace.size for trace in ours.traces) < 64 * 1024
