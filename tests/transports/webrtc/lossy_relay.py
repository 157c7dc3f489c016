"""A UDP relay between the browser and aiortc that loses the server's RTP on purpose.

The test rewrites the server's SDP answer so its only ICE candidate is the relay; every
datagram then passes through here (STUN, DTLS, SCTP and RTCP untouched). Audio RTP from the
server is dropped by a deterministic rule: every `every`-th packet, and all of them while
`blackout` is on. The relay holds no queue (each datagram is forwarded or dropped at once),
and it records the RTP timestamp of the last audio packet it forwarded.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass, field

_CANDIDATE = re.compile(r"^a=candidate:\S+ 1 udp \d+ (\d+\.\d+\.\d+\.\d+) (\d+) typ host", re.M)


def is_rtp(data: bytes) -> bool:
    """RTP, not RTCP (RFC 5761: RTCP packet types 192-223 share the first bits)."""
    return len(data) >= 12 and 128 <= data[0] <= 191 and not 64 <= (data[1] & 0x7F) <= 95


class _Side(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Callable[[bytes, tuple[str, int]], None]) -> None:
        self.on_datagram = on_datagram

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.on_datagram(data, addr)


@dataclass
class LossyRelay:
    every: int = 0  # drop every n-th server RTP packet (0: none)
    blackout: bool = False
    forwarded: int = 0
    dropped: int = 0
    last_rtp_timestamp: int | None = None  # of the last server RTP packet forwarded
    _server: tuple[str, int] | None = None
    _browser: tuple[str, int] | None = None
    _front: asyncio.DatagramTransport | None = None
    _back: asyncio.DatagramTransport | None = None
    _count: int = field(default=0)

    async def start(self, host: str = "0.0.0.0") -> int:
        loop = asyncio.get_running_loop()
        front, _ = await loop.create_datagram_endpoint(
            lambda: _Side(self._from_browser), local_addr=(host, 0)
        )
        back, _ = await loop.create_datagram_endpoint(
            lambda: _Side(self._from_server), local_addr=(host, 0)
        )
        self._front, self._back = front, back
        port: int = front.get_extra_info("sockname")[1]
        return port

    def rewrite(self, sdp: str) -> str:
        """Point the answer at the relay: its first IPv4 host candidate becomes the target,
        and every candidate line is replaced by the relay's."""
        found = _CANDIDATE.search(sdp)
        assert found is not None, "the answer has no IPv4 host candidate"
        host, port = found.group(1), int(found.group(2))
        self._server = (host, port)
        assert self._front is not None
        relay_port = self._front.get_extra_info("sockname")[1]
        # The relay listens on every interface: the server's address with the relay's port.
        line = f"a=candidate:1 1 udp 2130706431 {host} {relay_port} typ host"
        return re.sub(r"^a=candidate:.*$", line, sdp, flags=re.M)

    @staticmethod
    def hide_browser(sdp: str) -> str:
        """The offer with the browser's candidates replaced by an unreachable one, so the
        server can only reach the browser through the relay (never around it)."""
        line = "a=candidate:1 1 udp 2130706431 198.51.100.1 9 typ host"
        return re.sub(r"^a=candidate:.*$", line, sdp, flags=re.M)

    def _from_browser(self, data: bytes, addr: tuple[str, int]) -> None:
        self._browser = addr
        if self._back is not None and self._server is not None:
            self._back.sendto(data, self._server)

    def _from_server(self, data: bytes, _addr: tuple[str, int]) -> None:
        if self._front is None or self._browser is None:
            return
        if is_rtp(data):
            self._count += 1
            if self.blackout or (self.every and self._count % self.every == 0):
                self.dropped += 1
                return
            self.forwarded += 1
            self.last_rtp_timestamp = int.from_bytes(data[4:8], "big")
        self._front.sendto(data, self._browser)

    def close(self) -> None:
        for side in (self._front, self._back):
            if side is not None:
                side.close()
