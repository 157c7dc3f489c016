"""Gemini Live failures -> provider-neutral `ErrorKind`: the one table of this provider.

Gemini Live reports errors by closing the WebSocket: the close code and a reason text (an
invalid setup is 1007, a refused key 1008, a server-side abort or quota problem 1011), or by
refusing the handshake with an HTTP status. The runtime branches on the kind only.
"""

from __future__ import annotations

from vocalis.providers.base import ErrorKind, ProviderError

_FATAL_WORDS = ("api key", "permission", "unauthenticated", "unauthorized", "billing")
_QUOTA_WORDS = ("quota", "resource_exhausted", "resource exhausted", "rate limit")


def close_kind(code: int | None, reason: str, *, after_go_away: bool = False) -> ErrorKind:
    """The kind of a connection that ended with close ``code`` and ``reason``."""
    lowered = reason.lower()
    if any(word in lowered for word in _FATAL_WORDS) or code == 1008:
        return ErrorKind.FATAL
    if any(word in lowered for word in _QUOTA_WORDS):
        return ErrorKind.RATE_LIMITED
    if after_go_away:
        return ErrorKind.EXPIRED
    if code == 1007:
        return ErrorKind.INVALID
    if code in (1011, 1013, 1014):
        return ErrorKind.SERVER
    return ErrorKind.DISCONNECTED


def http_kind(status: int) -> ErrorKind:
    """The kind of a refused handshake."""
    if status in (401, 403):
        return ErrorKind.FATAL
    if status == 429:
        return ErrorKind.RATE_LIMITED
    if status == 404:
        return ErrorKind.INVALID
    return ErrorKind.UNAVAILABLE


def close_error(code: int | None, reason: str, *, after_go_away: bool = False) -> ProviderError:
    kind = close_kind(code, reason, after_go_away=after_go_away)
    message = f"connection closed ({code}): {reason}" if reason else f"connection closed ({code})"
    return ProviderError(kind, message, code=f"ws_{code}" if code is not None else None)
