"""When to reconnect a dropped provider session, and when to give up (pure, no I/O).

A failed connect is a failure — and so is a session that was set up but died before it was
*stable* (`stable_s`): a provider that accepts and then drops every connection used to get a
reconnect about every second forever, because a successful setup reset the attempt counter
(#14). Only a session that stayed up `stable_s` resets it. The first drop is reconnected at
once (a network blip should cost nothing); after that, delays double per consecutive failure
up to `max_s`, with jitter (half fixed, half random) so a fleet of calls dropped by
one provider outage does not reconnect in lock step. After `max_failures` consecutive
failures the session gives up (`SessionClosed(reason="reconnect_failed")`).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(slots=True)
class ReconnectPolicy:
    base_s: float = 0.5
    max_s: float = 15.0
    max_failures: int = 6
    # A session that lasted at least this long counts as healthy (resets the failures).
    stable_s: float = 30.0
    # Uniform [0, 1) source; tests pass a fixed one.
    rng: Callable[[], float] = field(default=random.random)
    failures: int = 0
    # The last failure was the first drop of a set-up session: reconnect without waiting.
    _blip: bool = False

    def session_ended(self, lasted_s: float, *, planned: bool = False) -> None:
        """A set-up session ended after `lasted_s`; `planned`: expiry or proactive recycle."""
        if planned or lasted_s >= self.stable_s:
            self.failures = 0
        else:
            self.failures += 1
        self._blip = self.failures <= 1

    def connect_failed(self) -> None:
        self.failures += 1
        self._blip = False

    @property
    def exhausted(self) -> bool:
        return self.failures > self.max_failures

    def delay(self) -> float:
        """Seconds to wait before the next connect (0 right after a healthy session)."""
        if self.failures == 0 or self._blip:
            return 0.0
        ceiling = min(self.max_s, self.base_s * 2.0 ** (self.failures - 1))
        return ceiling / 2 + ceiling / 2 * self.rng()
