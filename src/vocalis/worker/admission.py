"""Admission control: how many calls this process takes, decided exactly, at the door.

Why it exists: a worker that accepts every call degrades all of them at once (event-loop lag,
choppy audio) instead of refusing the one that does not fit; and a worker that decides from a
load *sample* (LiveKit samples every 0.5 s, P36) lets two calls 100 ms apart both in when only
one fits (S29). So admission here is a counter changed synchronously at the moment a call asks
to come in: with `max_sessions=1`, of two calls however close together exactly one gets a
`Lease`, the other a `Refusal` that says why — before any WebSocket is opened, so a load
balancer can send it to another worker.

Pure and synchronous (no I/O, no clock): the worker's HTTP layer turns a `Refusal` into a 503.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

__all__ = ["Admission", "Lease", "Refusal", "RefusalReason"]

RefusalReason = Literal["at_capacity", "draining"]


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a call was not admitted; `message` is safe to show to the caller's client."""

    reason: RefusalReason
    message: str
    # Seconds after which trying *this* worker again makes sense (None: do not retry here).
    retry_after_s: int | None


class Lease:
    """One admitted call's slot; `release()` (idempotent) gives it back."""

    __slots__ = ("_on_release", "_released", "kind")

    def __init__(self, kind: str, on_release: Callable[[Lease], None]) -> None:
        self.kind = kind
        self._on_release = on_release
        self._released = False

    @property
    def released(self) -> bool:
        return self._released

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._on_release(self)

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class Admission:
    """Counts live calls against `max_sessions` (None = unlimited); refuses while draining."""

    def __init__(self, max_sessions: int | None = None) -> None:
        if max_sessions is not None and max_sessions < 1:
            raise ValueError(f"max_sessions must be at least 1, got {max_sessions}")
        self.max_sessions = max_sessions
        self.draining = False
        self.live = 0
        self.accepted_total = 0
        self.finished_total = 0
        self.refused_total: dict[RefusalReason, int] = {"at_capacity": 0, "draining": 0}
        self._idle_callbacks: list[Callable[[], None]] = []

    def admit(self, kind: str = "call") -> Lease | Refusal:
        """A lease for a new call, or the reason it cannot come in (counted either way)."""
        if self.draining:
            self.refused_total["draining"] += 1
            return Refusal(
                "draining",
                "this worker is shutting down and takes no new calls; try another worker",
                None,
            )
        if self.max_sessions is not None and self.live >= self.max_sessions:
            self.refused_total["at_capacity"] += 1
            return Refusal(
                "at_capacity",
                f"this worker is at capacity ({self.live}/{self.max_sessions} calls); "
                "try another worker or retry shortly",
                1,
            )
        self.live += 1
        self.accepted_total += 1
        return Lease(kind, self._released)

    @property
    def accepting(self) -> bool:
        """Would a call asking now be admitted?"""
        return not self.draining and (self.max_sessions is None or self.live < self.max_sessions)

    def start_draining(self) -> None:
        """From now on every new call is refused; running calls keep their leases."""
        self.draining = True
        self._maybe_idle()

    def on_idle(self, callback: Callable[[], None]) -> None:
        """Call `callback` once no call is live while draining (at once if already so)."""
        self._idle_callbacks.append(callback)
        self._maybe_idle()

    def _released(self, lease: Lease) -> None:
        self.live -= 1
        self.finished_total += 1
        self._maybe_idle()

    def _maybe_idle(self) -> None:
        if self.draining and self.live == 0:
            callbacks, self._idle_callbacks = self._idle_callbacks, []
            for callback in callbacks:
                callback()
