"""When to restart a crashed worker process, and when to stop trying (pure; no clock, no I/O).

Why back-off and a cap: a worker that crashes because of something outside it (a provider
outage turned into an exception at start, a full disk) would otherwise be restarted in a
tight loop, burning the CPU its siblings need for their calls and flooding the log. So each
crash in a row waits twice as long as the last (from `base_s` up to `cap_s`); a worker that
ran for `stable_after_s` before crashing starts the count afresh (one crash an hour is a bug
to log, not a crash loop); after `max_in_a_row` quick crashes the supervisor gives up and
stops the fleet, so the orchestrator (systemd, Kubernetes) sees a failed service instead of
a pod that silently runs with fewer workers.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["GiveUp", "Restart", "RestartPolicy"]


@dataclass(frozen=True, slots=True)
class Restart:
    """Start a replacement after `delay_s`."""

    delay_s: float
    crashes_in_a_row: int


@dataclass(frozen=True, slots=True)
class GiveUp:
    """Too many quick crashes in a row: stop the fleet."""

    crashes_in_a_row: int


@dataclass(slots=True)
class RestartPolicy:
    """The decision for one worker slot; feed it each crash with how long the process ran."""

    base_s: float = 0.5
    cap_s: float = 30.0
    stable_after_s: float = 60.0
    max_in_a_row: int = 5
    in_a_row: int = 0

    def crashed(self, ran_s: float) -> Restart | GiveUp:
        if ran_s >= self.stable_after_s:
            self.in_a_row = 0
        self.in_a_row += 1
        if self.in_a_row > self.max_in_a_row:
            return GiveUp(self.in_a_row)
        delay = min(self.cap_s, self.base_s * 2.0 ** (self.in_a_row - 1))
        return Restart(delay, self.in_a_row)
