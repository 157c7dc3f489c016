"""Logging that can neither leak secrets nor flood.

Two hazards on a realtime socket: (1) the WebSocket library logs handshake headers at DEBUG,
which would print `Authorization: Bearer sk-…` / `api-key`; (2) a misbehaving server can send
thousands of bad events per second, and a warning per event (or one with a base64 audio
payload inside) buries everything else. `HeaderRedactor` scrubs the first; `WarnLimiter` caps
the second per kind of problem (with a cap on the kinds: a peer choosing the key must not
grow the table). And (3) text a peer wrote (a typed message, a transcript, an event type)
can carry terminal escape sequences — title changes, screen clears, hidden or right-to-left
text — so anything printed to an operator's terminal goes through `terminal_safe`.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

_SECRET_HEADERS = frozenset(
    {"authorization", "api-key", "x-api-key", "openai-api-key", "x-goog-api-key"}
)
# `Bearer <t>` (OpenAI), `Token <t>` (Gemini ephemeral tokens), `api-key: <k>` and
# `x-goog-api-key: <k>` (Gemini).
_BEARER_RE = re.compile(r"(?i)(bearer\s+|token\s+auth_tokens/|api-key[:=]\s*)[^\s'\",]+")


# C0 controls except tab and newline, DEL, C1 controls (ESC and CSI start sequences), and the
# Unicode bidirectional overrides/isolates/marks that reorder what a terminal shows.
_UNSAFE = dict.fromkeys(
    [
        *range(0x00, 0x09),
        *range(0x0B, 0x20),
        *range(0x7F, 0xA0),
        0x061C,
        0x200E,
        0x200F,
        *range(0x202A, 0x202F),
        *range(0x2066, 0x206A),
    ]
)


def terminal_safe(text: str) -> str:
    """`text` without control characters that a terminal would act on (tabs and newlines
    stay). Cheap when there is nothing to remove."""
    return text.translate(_UNSAFE)


class TerminalSafe(logging.Filter):
    """Makes a record's message `terminal_safe` (for handlers that write to a terminal)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = str(record.msg)
        record.msg = terminal_safe(message)
        record.args = None
        return True


def scrub(text: str) -> str:
    """Replace credentials that look like `Bearer <token>` / `api-key: <key>` in free text."""
    return _BEARER_RE.sub(r"\1<redacted>", text)


def _scrub_arg(arg: object) -> object:
    """Free-text arguments scrubbed; raw bytes too (picows logs the whole upgrade request)."""
    if isinstance(arg, str):
        return scrub(arg)
    if isinstance(arg, bytes | bytearray):
        text = bytes(arg).decode("latin-1")
        cleaned = scrub(text)
        return arg if cleaned == text else cleaned.encode("latin-1")
    return arg


class HeaderRedactor(logging.Filter):
    """Redacts secret header values in records of the WebSocket library's logger.

    websockets logs each handshake header as `"> %s: %s" % (name, value)`; any record whose
    arguments name a secret header gets its value replaced, and free text (str or bytes
    arguments: picows logs the raw upgrade request) is scrubbed.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and args:
            new_args = list(args)
            for i, arg in enumerate(new_args[:-1]):
                if isinstance(arg, str) and arg.lower() in _SECRET_HEADERS:
                    new_args[i + 1] = "<redacted>"
            record.args = tuple(_scrub_arg(a) for a in new_args)
        if isinstance(record.msg, str):
            record.msg = scrub(record.msg)
        return True


def redacting_logger(name: str) -> logging.Logger:
    """A logger for the WebSocket library with the redactor attached (idempotent)."""
    log = logging.getLogger(name)
    if not any(isinstance(f, HeaderRedactor) for f in log.filters):
        log.addFilter(HeaderRedactor())
    return log


class WarnLimiter:
    """At most `burst` warnings per key per `interval` seconds; then one suppression summary."""

    def __init__(
        self,
        logger: logging.Logger,
        *,
        burst: int = 3,
        interval: float = 30.0,
        max_keys: int = 64,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._burst = burst
        self._interval = interval
        self._now = now
        self._max_keys = max_keys
        # key -> [window start, count in window, suppressed in window]
        self._state: dict[str, list[float]] = {}

    def warn(self, key: str, msg: str, *args: object) -> bool:
        """Log `msg % args` unless `key` is over budget; returns whether it was logged.

        Beyond `max_keys` distinct keys, new keys share one budget ("other").
        """
        if key not in self._state and len(self._state) >= self._max_keys:
            key = "other"
        now = self._now()
        state = self._state.get(key)
        if state is None or now - state[0] >= self._interval:
            if state is not None and state[2]:
                self._logger.warning("suppressed %d more warnings like: %s", int(state[2]), key)
            state = [now, 0.0, 0.0]
            self._state[key] = state
        if state[1] < self._burst:
            state[1] += 1
            self._logger.warning(msg, *args)
            return True
        state[2] += 1
        return False
