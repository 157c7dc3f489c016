"""Rate limit on connection attempts, per client address (token bucket).

Why it exists: every accepted WebSocket starts a paid realtime session, and every attempt —
accepted or not — costs a TLS/HTTP handshake and a token comparison. A client hammering the
endpoint (a buggy retry loop, a token-guessing script) must be slowed down before it reaches
the token check, without affecting other clients. A token bucket per address allows a burst
(a page reload, a retry) and then `rate_per_s` attempts per second.

Memory is bounded: at most `max_clients` addresses are tracked; the least recently seen is
forgotten first (a forgotten address simply starts with a full bucket again).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["AttemptLimiter", "RateDecision"]


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    # Whole seconds until one more attempt would be allowed (0 when allowed).
    retry_after_s: int


class AttemptLimiter:
    """`check(key)` spends one token of `key`'s bucket, or says when to come back."""

    def __init__(
        self,
        rate_per_s: float = 2.0,
        burst: int = 10,
        *,
        max_clients: int = 10_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("rate_per_s must be > 0 and burst >= 1")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.max_clients = max_clients
        self._now = monotonic
        # key -> (tokens, time of last update)
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self.refused_total = 0

    def check(self, key: str) -> RateDecision:
        now = self._now()
        tokens, last = self._buckets.pop(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate_per_s)
        if tokens >= 1.0:
            decision = RateDecision(True, 0)
            tokens -= 1.0
        else:
            self.refused_total += 1
            decision = RateDecision(False, max(1, math.ceil((1.0 - tokens) / self.rate_per_s)))
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        return decision

    def __len__(self) -> int:
        return len(self._buckets)
