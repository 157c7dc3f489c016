"""One provider socket's send side (`providers/openai/connection.py`): a message is written at
once while nothing waits ahead of it; one the socket refuses waits, and everything after it
waits behind it, until the socket drains; nothing queued for a socket that ended is written."""

from __future__ import annotations

import asyncio
import json

import numpy as np

from vocalis.audio.codec import b64encode_pcm16
from vocalis.providers.openai.appends import InputAppends
from vocalis.providers.openai.connection import _Connection
from vocalis.providers.wsclient import SocketBackend, SocketClosed
from vocalis.utils.clock import wait_idle


class FillingSocket:
    """A socket whose write buffer is full while `full` is set: `write` refuses, `send`
    waits until it drains (as picows' and websockets' flow control do)."""

    backend: SocketBackend = "picows"

    def __init__(self) -> None:
        self.written: list[str] = []
        self.full = False
        self.closed = False
        self.drained = asyncio.Event()
        self.wrote = asyncio.Event()

    def write(self, message: str) -> bool:
        if self.full:
            return False
        self.written.append(message)
        return True

    async def send(self, message: str) -> None:
        await self.drained.wait()
        if self.closed:
            raise SocketClosed("closed")
        self.written.append(message)
        self.wrote.set()

    def drain(self) -> None:
        self.full = False
        self.drained.set()


def _types(socket: FillingSocket) -> list[str]:
    return [json.loads(m)["type"] for m in socket.written]


def _connection(socket: FillingSocket) -> _Connection:
    return _Connection(socket, appends=InputAppends(b64encode_pcm16, 480), hold_s=0.04)  # type: ignore[arg-type]


async def test_a_refused_message_keeps_its_place_until_the_socket_drains() -> None:
    socket = FillingSocket()
    conn = _connection(socket)
    conn.send_event({"type": "session.update"})
    assert _types(socket) == ["session.update"]  # written at once, no task in between
    socket.full = True
    conn.send_event({"type": "response.create"})  # refused: waits
    socket.full = False  # room again, but something waits ahead: this one goes behind it
    conn.send_audio(np.ones(480, dtype=np.int16))
    conn.send_event({"type": "input_audio_buffer.commit"})
    assert _types(socket) == ["session.update"]
    socket.drain()
    async with asyncio.timeout(10):
        while len(socket.written) < 4:
            socket.wrote.clear()
            await socket.wrote.wait()
    assert _types(socket) == [
        "session.update",
        "response.create",
        "input_audio_buffer.append",
        "input_audio_buffer.commit",
    ]
    conn.send_event({"type": "response.cancel"})  # the backlog is gone: written at once
    assert _types(socket)[-1] == "response.cancel"
    await conn.stop_sending()


async def test_nothing_queued_for_a_socket_that_ended_is_written() -> None:
    socket = FillingSocket()
    conn = _connection(socket)
    socket.full = True
    conn.send_event({"type": "input_audio_buffer.clear"})
    conn.end("dropped")
    conn.send_event({"type": "response.create"})  # after the end: not even queued
    await conn.stop_sending()  # the teardown drops what waits
    socket.drain()
    await wait_idle()
    assert socket.written == []


async def test_a_socket_that_closes_while_draining_ends_the_connection() -> None:
    socket = FillingSocket()
    conn = _connection(socket)
    socket.full = True
    conn.send_event({"type": "response.create"})
    socket.closed = True
    socket.drain()
    async with asyncio.timeout(10):
        reason = await conn.ended
    assert reason == "dropped" and socket.written == []
