"""Identifier generation in the shape the real API uses (``event_`` + 21 base62 characters).

Ids are cheap (a per-session random stem plus a counter) because one is minted for every
server event, audio deltas included; and deterministic for a given seed, so that two runs of
the same scenario produce the same log.
"""

from __future__ import annotations

import random

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_STEM_LEN = 13
_COUNTER_LEN = 8  # 62**8 ids per prefix per session: never wraps in practice


def _base62(value: int, width: int) -> str:
    """``value`` in base 62, zero-padded to ``width`` (a loop per digit actually used: an
    event id is minted per audio delta)."""
    chars = ""
    while value:
        value, digit = divmod(value, 62)
        chars = _ALPHABET[digit] + chars
    return chars.rjust(width, "0")


class IdFactory:
    """Mints ids like ``item_C9G8pjSJCfRNEh00000003``; unique within one factory."""

    def __init__(self, seed: int | str | None = None) -> None:
        rng = random.Random(seed)
        self._stem = "".join(rng.choice(_ALPHABET) for _ in range(_STEM_LEN))
        self._counters: dict[str, int] = {}

    def new(self, prefix: str) -> str:
        n = self._counters.get(prefix, 0) + 1
        self._counters[prefix] = n
        return f"{prefix}_{self._stem}{_base62(n, _COUNTER_LEN)}"

    def event(self) -> str:
        return self.new("event")
