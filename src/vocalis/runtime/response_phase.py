"""The phases of one response's life and why it stopped early.

Their own module because both the run (`runtime.response`, which moves through them) and the
public view of a session (`runtime.observe`, which reports them) need them, and the view must
not depend on the run's machinery.
"""

from __future__ import annotations

import enum

__all__ = ["ResponsePhase", "StopReason"]


class ResponsePhase(enum.Enum):
    """Where a response is in its life; each phase follows the previous one, never back."""

    PLAYING = "playing"  # messages are pulled and played (or the run is about to start)
    AWAITING_DONE = "awaiting_done"  # every segment has its result; waiting for the provider
    SETTLING = "settling"  # the ledger ran; provider ops and tool outputs are being sent
    SETTLED = "settled"  # history final, handle finished, the session was told


class StopReason(enum.Enum):
    """Why a response stopped before the provider completed it (None: it did not stop)."""

    INTERRUPTED = "interrupted"  # the caller or the app cut it (`interrupt_source` says who)
    STALLED = "stalled"  # produced nothing for `stall_timeout_s`; the watchdog cancelled it
    CLOSED = "closed"  # the session closed under it (hang-up, `aclose`)
