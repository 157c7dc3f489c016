"""Listening sockets: bound here, or handed over already bound by a supervising process.

Why pre-bound sockets: `vocalis serve --workers N` binds every port once in the supervisor
and starts N worker processes that inherit the sockets and all accept on them (the kernel
queues each connection once; whichever worker accepts first serves it). The workers run the
unchanged single-process serve code; when that code asks `WebServer.start` for a `host:port`,
`listening_socket` returns the inherited socket registered for exactly that address instead
of binding a new one. So the transports (playground, Twilio, WebRTC, admin) need no
knowledge of the pool.
"""

from __future__ import annotations

import socket

__all__ = ["adopt", "bind_listener", "listening_socket"]

# Pre-bound listening sockets by the (host, port) a server will ask for.
_ADOPTED: dict[tuple[str, int], socket.socket] = {}


def bind_listener(host: str, port: int) -> socket.socket:
    """A non-blocking TCP socket bound to `host:port` (0: any free port) and listening."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _name, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(1024)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def adopt(host: str, port: int, sock: socket.socket) -> None:
    """Serve `host:port` from the already bound, listening `sock` (e.g. inherited: closing the
    server then closes this process' copy only)."""
    sock.setblocking(False)
    _ADOPTED[(host, port)] = sock


def listening_socket(host: str, port: int) -> socket.socket:
    """The adopted socket for `host:port` if there is one (used once), else a new one."""
    adopted = _ADOPTED.pop((host, port), None)
    return adopted if adopted is not None else bind_listener(host, port)
