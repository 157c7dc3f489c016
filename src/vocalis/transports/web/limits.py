"""Connection-level limits of the HTTP layer, and the book of handshakes in progress.

Why it exists: every defence that runs *after* a request header has arrived (rate limit, token
check, admission) is useless against a client that never finishes its header. A few hundred
slow handshakes used to exhaust the process's file descriptors, so `/healthz` and `/livez`
stopped answering (an orchestrator then kills a healthy worker) and a real call waited seconds
for its first audio. So before any byte is parsed, a connection is booked here: at most
`handshakes_per_address` unfinished request heads per client address, and at most
`max_pending_handshakes` in total — when that is full, the *oldest* unfinished handshake is
dropped to make room (a flood only ever hurts itself; a fresh health probe gets in). A head
must arrive within `header_timeout_s` and fit in `max_header_bytes` / `max_headers`.

`HandshakeBook` is the pure decision core (no I/O, no clock): the asyncio protocol in
`protocol.py` reports connections opening, finishing their head and closing, and executes
what the book decides.
"""

from __future__ import annotations

import enum
import resource
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Generic, TypeVar

__all__ = ["Admit", "HandshakeBook", "HttpLimits", "default_pending_handshakes"]

# File descriptors kept free for what must keep working under a flood: running calls' provider
# sockets, health/admin probes, log files, the embedded sim.
FD_HEADROOM = 256


def default_pending_handshakes(headroom: int = FD_HEADROOM) -> int:
    """Half of what the fd limit leaves after `headroom` (at least 16): a slow-handshake flood
    can never take the descriptors that running calls and health probes need."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = 65536
    return max(16, (int(soft) - headroom) // 2)


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """Limits of one HTTP listener (defaults suit `vocalis serve`; docs/deployment.md sizes them).

    Header limits and timeouts apply before authentication, so they bound what an anonymous
    peer can make the process hold.
    """

    # A request head (request line + headers) must be complete within this many seconds.
    header_timeout_s: float = 10.0
    # Bytes of one request head; beyond it: 431 Request Header Fields Too Large.
    max_header_bytes: int = 8 * 1024
    # Header lines of one request; beyond it: 431.
    max_headers: int = 64
    # Unfinished request heads per client address (the peer's address, or a trusted proxy's
    # client); the next one is closed at once.
    handshakes_per_address: int = 32
    # Unfinished request heads in total; when full, the oldest is dropped for a new one.
    max_pending_handshakes: int = field(default_factory=default_pending_handshakes)
    # An idle keep-alive connection is closed after this many seconds.
    keep_alive_s: float = 5.0
    # Largest WebSocket message accepted (bigger: close 1009).
    max_message_bytes: int = 64 * 1024

    def __post_init__(self) -> None:
        for name in ("header_timeout_s", "keep_alive_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive")
        for name in (
            "max_header_bytes",
            "max_headers",
            "handshakes_per_address",
            "max_pending_handshakes",
            "max_message_bytes",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")


class Admit(enum.Enum):
    """The book's verdict on a new connection."""

    ACCEPT = "accept"
    # Too many unfinished handshakes from this address: close the new connection.
    REFUSE_ADDRESS = "refuse_address"


K = TypeVar("K")


class HandshakeBook(Generic[K]):
    """Connections whose request head has not arrived yet, per address and in total.

    `K` identifies a connection (the protocol object in production, ints in tests). `open()`
    returns the verdict and the connections to drop to stay under the total (oldest first);
    `done()` is called once the head arrived or the connection closed (idempotent).
    """

    def __init__(self, per_address: int, total: int) -> None:
        if per_address < 1 or total < 1:
            raise ValueError("limits must be at least 1")
        self.per_address = per_address
        self.total = total
        self._pending: OrderedDict[K, str] = OrderedDict()
        self._by_address: dict[str, int] = {}
        self.refused_total = 0
        self.evicted_total = 0

    def open(self, key: K, address: str, *, exempt: bool = False) -> tuple[Admit, list[K]]:
        """Book a new connection from `address` (`exempt`: a trusted proxy, no per-address cap)."""
        if not exempt and self._by_address.get(address, 0) >= self.per_address:
            self.refused_total += 1
            return Admit.REFUSE_ADDRESS, []
        evicted: list[K] = []
        while len(self._pending) >= self.total:
            oldest = next(iter(self._pending))
            self.done(oldest)
            evicted.append(oldest)
        self.evicted_total += len(evicted)
        self._pending[key] = address
        self._by_address[address] = self._by_address.get(address, 0) + 1
        return Admit.ACCEPT, evicted

    def done(self, key: K) -> None:
        """The head arrived (or the connection closed): no longer pending."""
        address = self._pending.pop(key, None)
        if address is None:
            return
        left = self._by_address[address] - 1
        if left:
            self._by_address[address] = left
        else:
            del self._by_address[address]

    def pending(self, address: str | None = None) -> int:
        """Unfinished handshakes (of `address`, or in total)."""
        if address is None:
            return len(self._pending)
        return self._by_address.get(address, 0)

    def __contains__(self, key: object) -> bool:
        return key in self._pending
