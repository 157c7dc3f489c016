"""Session clock time → the epoch nanoseconds OpenTelemetry timestamps are in.

Why: every runtime fact is stamped with the session's `Clock` (playback positions, latency),
and spans must agree with those facts exactly — a span that measured its own wall time would
disagree with the `TurnMetrics` it reports and could not be asserted in tests driven by a
`ManualClock`. So one anchor pair (clock now, epoch now) is taken when the call starts and
every span time is that epoch plus the clock's offset.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from vocalis.utils.clock import Clock

__all__ = ["Timebase"]


class Timebase:
    def __init__(self, clock: Clock, epoch_ns: Callable[[], int] = time.time_ns) -> None:
        self.clock = clock
        self._clock0 = clock.now()
        self._epoch0 = epoch_ns()

    def ns(self, at: float | None = None) -> int:
        """Epoch ns of clock time `at` (now when `None`)."""
        t = self.clock.now() if at is None else at
        return self._epoch0 + round((t - self._clock0) * 1e9)
