"""Both WebSocket backends behave the same towards the provider session (#17).

Against real `websockets` servers on port 0: headers, refused handshakes, TLS with the
default trust store (`SSL_CERT_FILE`), whole messages (fragmented, binary), the 16 MiB-style
size limit and invalid text as a closed socket, the peer's close, our close handshake.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

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
