"""`/metrics`: the worker's Prometheus exposition, written by prometheus-client.

Why it exists: a fleet of workers behind a load balancer is run by dashboards and alerts —
live calls per worker (capacity planning, autoscaling), event-loop lag (overload before it is
audible), refusals (too few workers), errors, clients flooding caller audio, and what callers
live through: the turn latency distribution, answers cut short (truncations) or never heard
(deletions), failing tools.

The facts have their owners — admission counts calls, the lag monitor samples the loop, each
call's events feed `PrometheusCallMetrics` — and this module only exposes them: a collector
reads the worker's objects at scrape time (nothing to keep in sync), prometheus-client writes
the text format, its `ProcessCollector` the standard `process_*` series. One registry per
worker, so a scrape shows exactly that worker's calls. Only bounded label values are used
(refusal reasons, error kinds, close reasons, response origins, interrupt sources, tool
outcomes).
"""

from __future__ import annotations

import os
import resource
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, ProcessCollector
from prometheus_client import generate_latest as _generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector

from vocalis.telemetry.prometheus import PrometheusCallMetrics
from vocalis.transports.pacing import PACING
from vocalis.worker.admission import Admission, AdmissionCounts
from vocalis.worker.fleet import FleetPlace
from vocalis.worker.lag import LoopLagMonitor

if TYPE_CHECKING:
    from vocalis.worker.fleet_metrics import FleetMirror

__all__ = [
    "CONTENT_TYPE",
    "ErrorCounters",
    "WorkerMetrics",
    "admission_families",
    "process_rss_bytes",
]

# What `generate_latest` writes (the classic text format every Prometheus version reads).
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

ErrorKind = str  # "session_error" | "session_fatal" | "call_failed"


@dataclass
class ErrorCounters:
    """Errors seen by the worker's calls, by kind (bounded set)."""

    counts: dict[ErrorKind, int] = field(
        default_factory=lambda: {"session_error": 0, "session_fatal": 0, "call_failed": 0}
    )

    def add(self, kind: ErrorKind) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1


def process_rss_bytes() -> int:
    """Resident set size now (Linux /proc; elsewhere the peak from getrusage)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            pages = int(statm.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def admission_families(counts: AdmissionCounts, max_sessions: int | None) -> Iterator[Metric]:
    """The admission series: of one process, or of a pool (read from its shared table)."""
    yield GaugeMetricFamily("vocalis_live_sessions", "Calls in progress.", value=counts.live)
    if max_sessions is not None:
        yield GaugeMetricFamily(
            "vocalis_max_sessions", "Admission limit (--max-sessions).", value=max_sessions
        )
    yield GaugeMetricFamily(
        "vocalis_draining",
        "1 while draining (no new calls), else 0.",
        value=1 if counts.draining else 0,
    )
    yield CounterMetricFamily("vocalis_sessions_accepted", "Calls admitted.", value=counts.accepted)
    yield CounterMetricFamily(
        "vocalis_sessions_finished", "Admitted calls that ended.", value=counts.finished
    )
    yield _labelled(
        "vocalis_sessions_refused", "Calls refused, by reason.", "reason", counts.refused.items()
    )


class _AdmissionCollector(Collector):
    """This process' admission series (a pool's come from its shared table instead)."""

    def __init__(self, admission: Admission) -> None:
        self._admission = admission

    def collect(self) -> Iterator[Metric]:
        return admission_families(self._admission.counts(), self._admission.max_sessions)


class _WorkerCollector(Collector):
    """Errors, loop lag, pacing, early closes and uptime: what only this process knows, read
    from their owners at each scrape (in a pool, `FleetMirror` copies these)."""

    def __init__(self, lag: LoopLagMonitor, errors: ErrorCounters, started_at: float) -> None:
        self._lag = lag
        self._errors = errors
        self._started_at = started_at
        # Per listener: connections closed before their request head, by reason.
        self.connections_closed: list[Mapping[str, int]] = []

    def collect(self) -> Iterator[Metric]:
        yield _labelled(
            "vocalis_errors",
            "Errors by kind: session_error (reported, recovered), session_fatal (ended a "
            "call), call_failed (the call handler raised).",
            "kind",
            self._errors.counts.items(),
        )
        yield from self._loop_lag()
        yield from _pacing()
        yield from self._http_closed()
        yield GaugeMetricFamily(
            "vocalis_uptime_seconds",
            "Seconds since the worker started.",
            value=round(max(0.0, time.time() - self._started_at), 3),
        )

    def _http_closed(self) -> Iterator[Metric]:
        if not self.connections_closed:
            return
        totals: dict[str, int] = {}
        for closed in self.connections_closed:
            for reason, count in closed.items():
                totals[reason] = totals.get(reason, 0) + count
        yield _labelled(
            "vocalis_http_connections_closed",
            "Connections closed before their request head, by reason (per_address, evicted, "
            "head_timeout, head_too_large): connection floods and slow clients.",
            "reason",
            totals.items(),
        )

    def _loop_lag(self) -> Iterator[Metric]:
        lag = self._lag
        hist = lag.histogram
        buckets = [(repr(float(bound)), count) for bound, count in hist.cumulative()]
        yield HistogramMetricFamily(
            "vocalis_event_loop_lag_seconds",
            f"How late the event loop woke a {lag.interval_s:g} s timer.",
            buckets=[*buckets, ("+Inf", hist.count)],
            sum_value=hist.sum,
        )
        yield GaugeMetricFamily(
            "vocalis_event_loop_lag_max_seconds",
            f"Largest event-loop lag in the last {lag.window_s:g} s.",
            value=lag.max_recent_s,
        )


def _pacing() -> Iterator[Metric]:
    """Caller audio refused for arriving faster than real time (process-wide totals kept by
    the transports' pacer): a misbehaving or hostile client, not a slow worker."""
    yield CounterMetricFamily(
        "vocalis_caller_audio_dropped_seconds",
        "Caller audio dropped for arriving faster than real time.",
        value=PACING.dropped_audio_s,
    )
    closed = CounterMetricFamily(
        "vocalis_calls_closed",
        "Calls the worker closed, by reason (audio_flood: caller audio kept arriving faster "
        "than real time; closed with 1008).",
        labels=["reason"],
    )
    closed.add_metric(["audio_flood"], PACING.calls_closed)
    yield closed


def _labelled(
    name: str, documentation: str, label: str, counts: Iterable[tuple[str, int]]
) -> Metric:
    family = CounterMetricFamily(name, documentation, labels=[label])
    for value, count in sorted(counts):
        family.add_metric([value], count)
    return family


class WorkerMetrics:
    """The registry behind one worker's `/metrics`; `calls` counts its calls' facts."""

    def __init__(
        self,
        admission: Admission,
        lag: LoopLagMonitor,
        errors: ErrorCounters,
        started_at: float,
        *,
        fleet: FleetPlace | None = None,
    ) -> None:
        self.registry = CollectorRegistry()
        self._collector = _WorkerCollector(lag, errors, started_at)
        self.registry.register(_AdmissionCollector(admission))
        self.registry.register(self._collector)
        ProcessCollector(registry=self.registry)  # process_* (CPU, RSS, fds, start time)
        self.calls = PrometheusCallMetrics(self.registry)
        # A pool: scrapes show every worker's sums (see `fleet_metrics`).
        self._mirror: FleetMirror | None = None
        self._exposed = self.registry
        if fleet is not None:
            from vocalis.worker.fleet_metrics import FleetMirror, fleet_registry

            self._mirror = FleetMirror([self._collector, ProcessCollector(registry=None)], lag)
            self._exposed = fleet_registry(
                fleet.table, admission.max_sessions, str(fleet.metrics_dir)
            )

    def start(self) -> None:
        """In a pool, start copying this worker's facts to the pool's files."""
        if self._mirror is not None:
            self._mirror.start()

    async def aclose(self) -> None:
        if self._mirror is not None:
            await self._mirror.aclose()

    def watch_connections_closed(self, closed: Mapping[str, int]) -> None:
        """Expose a listener's counts of connections closed before their request head (the
        `closed` of its `ConnectionGuard`), summed over listeners, read at each scrape."""
        self._collector.connections_closed.append(closed)

    def text(self) -> str:
        """The exposition now (Prometheus text format 0.0.4)."""
        if self._mirror is not None:
            self._mirror.publish()  # this worker's own facts: current, not up to 1 s old
        return _generate_latest(self._exposed).decode("utf-8")
