"""Request-head checks and the client's address behind trusted proxies. Pure functions.

Why it exists: a few headers decide security questions — `Host` and `Origin` (is this the
playground's own page?), `X-Forwarded-For` (whose rate limit is this?). A request carrying
two of them, or one that does not parse, is either broken or an attempt to make two parts
of the stack read different values; it is refused with 400 before anything reads it, never
turned into a 500 with a traceback. Methods the server does not implement get 501 (the
router answers 405 for a known method on the wrong route).

Proxy headers are believed only from configured proxies (`TrustedProxies`), and then only
the right-most hop that is not itself a trusted proxy: entries to its left were written by the
client. `X-Real-IP` is never believed (a proxy that does not set it passes the client's
value through), only checked for shape.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "CRITICAL_HEADERS",
    "KNOWN_METHODS",
    "HeadRefusal",
    "TrustedProxies",
    "check_request_head",
    "client_address",
]

# Methods this server implements somewhere; anything else is 501 Not Implemented.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"})
# Headers that must appear at most once and parse.
CRITICAL_HEADERS = (b"host", b"origin", b"x-real-ip", b"x-forwarded-for")

_HOST = re.compile(rb"^(\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9._-]{1,253})(:[0-9]{1,5})?$")
_ORIGIN = re.compile(
    rb"^[a-z][a-z0-9+.-]{0,15}://(\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9._-]{1,253})(:[0-9]{1,5})?$"
)

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class HeadRefusal:
    """Why a request head is refused: the status and a one-line, input-free message."""

    status: int
    message: str


def _parse_ip(text: str) -> Address | None:
    text = text.strip()
    if not text.isascii():
        return None  # full-width digits and friends are not addresses
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _valid(name: bytes, value: bytes) -> bool:
    if name == b"host":
        return _HOST.match(value) is not None
    if name == b"origin":
        return value == b"null" or _ORIGIN.match(value.lower()) is not None
    if not value.isascii():
        return False
    if name == b"x-real-ip":
        return _parse_ip(value.decode()) is not None
    # x-forwarded-for: a comma-separated list of addresses.
    return all(_parse_ip(part) is not None for part in value.decode().split(","))


def check_request_head(
    method: str,
    headers: Sequence[tuple[bytes, bytes]],
    *,
    max_headers: int,
    max_header_bytes: int,
    target_bytes: int = 0,
) -> HeadRefusal | None:
    """None when the head may go on to routing; else the refusal (431, 501 or 400).

    `headers` are (lower-case name, value) pairs as the server parsed them; `target_bytes`
    is the length of the request target. A head that arrived whole is measured here (the
    parser's buffer limit only catches one that is still incomplete).
    """
    if len(headers) > max_headers:
        return HeadRefusal(431, f"Request Header Fields Too Large: more than {max_headers}")
    size = target_bytes + sum(len(name) + len(value) + 4 for name, value in headers)
    if size > max_header_bytes:
        return HeadRefusal(431, f"Request Header Fields Too Large: over {max_header_bytes} bytes")
    if method not in KNOWN_METHODS:
        return HeadRefusal(501, "Not Implemented: unknown method")
    seen: set[bytes] = set()
    for name, value in headers:
        if name not in CRITICAL_HEADERS:
            continue
        shown = name.decode()
        if name in seen:
            return HeadRefusal(400, f"Bad Request: duplicate {shown} header")
        seen.add(name)
        if not _valid(name, value.strip()):
            return HeadRefusal(400, f"Bad Request: malformed {shown} header")
    return None


class TrustedProxies:
    """The addresses whose `X-Forwarded-For` is believed (CIDR networks or single addresses)."""

    def __init__(self, networks: Iterable[str] = ()) -> None:
        parsed: list[Network] = []
        for text in networks:
            try:
                parsed.append(ipaddress.ip_network(text.strip(), strict=False))
            except ValueError:
                raise ValueError(
                    f"trusted proxy {text!r} is not an IP address or CIDR network"
                ) from None
        self.networks: tuple[Network, ...] = tuple(parsed)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def __contains__(self, address: object) -> bool:
        if isinstance(address, str):
            ip = _parse_ip(address)
        elif isinstance(address, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
            ip = address
        else:
            return False
        return ip is not None and any(ip in network for network in self.networks)


def client_address(
    peer: str, headers: Sequence[tuple[bytes, bytes]], trusted: TrustedProxies
) -> str:
    """The address a rate limit and the logs should use.

    The socket peer, unless it is a trusted proxy: then the right-most `X-Forwarded-For` entry
    that is not a trusted proxy (proxies append the address they received the request from).
    Call after `check_request_head` (so the header, if any, is single and well-formed).
    """
    if peer not in trusted:
        return peer
    forwarded = next((value for name, value in headers if name == b"x-forwarded-for"), None)
    if forwarded is None:
        return peer
    hops = [part.strip() for part in forwarded.decode("ascii").split(",")]
    for hop in reversed(hops):
        if hop not in trusted:
            return str(ipaddress.ip_address(hop))
    return str(ipaddress.ip_address(hops[0]))
