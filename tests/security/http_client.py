"""A raw HTTP/1.1 client for attacks a polite client library will not send.

Duplicate headers, partial heads, pipelined requests, made-up methods, chosen source addresses
(any 127.x.y.z is this machine, so "many clients" stay on loopback).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


async def open_raw(
    port: int, source: str = "127.0.0.1"
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))


async def read_reply(reader: asyncio.StreamReader, *, head_only: bool = False) -> Reply:
    """One response (Content-Length framed; `head_only` for a HEAD request's answer)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    length = 0 if head_only else int(headers.get("content-length", "0"))
    body = await reader.readexactly(length) if length else b""
    return Reply(status, headers, body)


async def request(
    port: int,
    raw: bytes,
    *,
    source: str = "127.0.0.1",
    head_only: bool = False,
    within: float = 10.0,
) -> Reply:
    """Send `raw` (a full request head, CRLF line ends) and read one reply."""
    reader, writer = await open_raw(port, source)
    try:
        writer.write(raw)
        await writer.drain()
        async with asyncio.timeout(within):
            return await read_reply(reader, head_only=head_only)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def get(path: str, *extra: str, method: str = "GET", host: str = "127.0.0.1") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", *extra, "", ""]
    return "\r\n".join(lines).encode("utf-8")  # raw bytes: non-ASCII goes as UTF-8


async def closed_by_server(reader: asyncio.StreamReader, within: float = 10.0) -> bool:
    """True once the server closed the connection (EOF or reset) without answering."""
    try:
        async with asyncio.timeout(within):
            data = await reader.read(65536)
    except (ConnectionResetError, BrokenPipeError):
        return True
    return data == b""
