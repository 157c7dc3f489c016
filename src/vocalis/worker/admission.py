"""Admission control: how many calls this process takes, decided exactly, at the door.

Why it exists: a worker that accepts every call degrades all of them at once (event-loop lag,
choppy audio) instead of refusing the one that does not fit; and a worker that decides from a
load *sample* (LiveKit samples every 0.5 s, P36) lets two calls 100 ms apart both in when only
one fits (S29). So admission here is a counter changed synchronously at the moment a call asks
to come in: with `max_sessions=1`, of two calls however close together exactly one gets a
`Lease`, the other a `Refusal` that says why — before any WebSocket is opened, so a load
balancer can send it to another worker.

Synchronous, no clock: the worker's HTTP layer turns a `Refusal` into a 503. The counts live
in a book: this process' integers, or (`--workers N`) the fleet's shared table, so the limit
is one limit for the whole fleet.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

__all__ = [
    "Admission",
    "AdmissionBook",
    "AdmissionCounts",
    "Lease",
    "LocalBook",
    "Refusal",
    "RefusalReason",
]

RefusalReason = Literal["at_capacity", "draining"]


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a call was not admitted; `message` is safe to show to the caller's client."""

    reason: RefusalReason
    message: str
    # Seconds after which trying *this* worker again makes sense (None: do not retry here).
    retry_after_s: int | None


@dataclass(frozen=True, slots=True)
class AdmissionCounts:
    """Admission's counts at one moment: of one process (`Admission.counts`) or of a pool
    (`FleetTable.totals`); what `/metrics` shows of either."""

    live: int
    accepted: int
    finished: int
    refused: Mapping[RefusalReason, int]
    draining: bool


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


class AdmissionBook(Protocol):
    """Where the live-call count and the admission counters are kept (their one owner).

    `LocalBook` keeps them in this process; with `vocalis serve --workers N` a slot of the
    fleet's shared table does (`vocalis.worker.fleet`), so the limit holds across processes.
    `take` decides and counts in one step: two processes asking at once cannot both get the
    last slot.
    """

    @property
    def live(self) -> int:
        """Calls this process is running."""
        ...

    @property
    def fleet_live(self) -> int:
        """Calls running against the limit (every process sharing it)."""
        ...

    @property
    def accepted_total(self) -> int: ...

    @property
    def finished_total(self) -> int: ...

    @property
    def refused_total(self) -> Mapping[RefusalReason, int]: ...

    def take(self, limit: int | None) -> int | None:
        """Count a call in if fewer than `limit` run (None: no limit) and return None; else
        return the number running (nothing counted but the refusal's caller does that)."""
        ...

    def give_back(self) -> None:
        """A call counted in by `take` ended."""
        ...

    def refused(self, reason: RefusalReason) -> None: ...


class LocalBook:
    """The counts of one process (plain integers)."""

    def __init__(self) -> None:
        self.live = 0
        self.accepted_total = 0
        self.finished_total = 0
        self.refused_total: dict[RefusalReason, int] = {"at_capacity": 0, "draining": 0}

    @property
    def fleet_live(self) -> int:
        return self.live

    def take(self, limit: int | None) -> int | None:
        if limit is not None and self.live >= limit:
            return self.live
        self.live += 1
        self.accepted_total += 1
        return None

    def give_back(self) -> None:
        self.live -= 1
        self.finished_total += 1

    def refused(self, reason: RefusalReason) -> None:
        self.refused_total[reason] += 1


class Admission:
    """Counts live calls against `max_sessions` (None = unlimited); refuses while draining.

    `book` holds the counts (default: this process alone); draining is this process' own
    state: a draining worker refuses while its siblings still take calls.
    """

    def __init__(self, max_sessions: int | None = None, book: AdmissionBook | None = None) -> None:
        if max_sessions is not None and max_sessions < 1:
            raise ValueError(f"max_sessions must be at least 1, got {max_sessions}")
        self.max_sessions = max_sessions
        self.book: AdmissionBook = book if book is not None else LocalBook()
        self.draining = False
        self._idle_callbacks: list[Callable[[], None]] = []

    @property
    def live(self) -> int:
        """Calls running in this process (a drain waits for these)."""
        return self.book.live

    def counts(self) -> AdmissionCounts:
        """This process' counts now (its draining state; the book's numbers)."""
        book = self.book
        return AdmissionCounts(
            live=book.live,
            accepted=book.accepted_total,
            finished=book.finished_total,
            refused=dict(book.refused_total),
            draining=self.draining,
        )

    def admit(self, kind: str = "call") -> Lease | Refusal:
        """A lease for a new call, or the reason it cannot come in (counted either way)."""
        if self.draining:
            self.book.refused("draining")
            return Refusal(
                "draining",
                "this worker is shutting down and takes no new calls; try another worker",
                None,
            )
        running = self.book.take(self.max_sessions)
        if running is not None:
            self.book.refused("at_capacity")
            return Refusal(
                "at_capacity",
                f"this worker is at capacity ({running}/{self.max_sessions} calls); "
                "try another worker or retry shortly",
                1,
            )
        return Lease(kind, self._released)

    @property
    def accepting(self) -> bool:
        """Would a call asking now be admitted?"""
        if self.draining:
            return False
        return self.max_sessions is None or self.book.fleet_live < self.max_sessions

    def start_draining(self) -> None:
        """From now on every new call is refused; running calls keep their leases."""
        self.draining = True
        self._maybe_idle()

    def on_idle(self, callback: Callable[[], None]) -> None:
        """Call `callback` once no call is live while draining (at once if already so)."""
        self._idle_callbacks.append(callback)
        self._maybe_idle()

    def _released(self, lease: Lease) -> None:
        self.book.give_back()
        self._maybe_idle()

    def _maybe_idle(self) -> None:
        if self.draining and self.book.live == 0:
            callbacks, self._idle_callbacks = self._idle_callbacks, []
            for callback in callbacks:
                callback()
