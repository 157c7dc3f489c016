"""`/metrics` of a worker pool: one scrape, on any port of any worker, shows the fleet's sums.

How, with prometheus-client's multiprocess mode (`PROMETHEUS_MULTIPROC_DIR`, set by the
supervisor for every worker): metric objects write their values to per-process files in that
folder and `MultiProcessCollector` merges the files of all processes at scrape time
(counters and histograms summed; gauges by their `multiprocess_mode`). The call metrics
(`PrometheusCallMetrics`: turn latency, truncations, tools, interruptions) are such objects
already; the loop-lag histogram gets one fed by each sample. The worker's other facts are
read from their owners at scrape time (`_WorkerCollector`, `ProcessCollector`); `FleetMirror`
copies them into multiprocess objects every `MIRROR_INTERVAL_S` and before this worker's own
scrape, so a sibling's values in a scrape are at most that old. Admission (live, limit,
accepted, finished, refused, draining) is read from the fleet's shared table, exact.

A worker that dies keeps its counters in the sum (totals never go back); the supervisor
removes its live gauges (`mark_process_dead`). Metric names are the one-process names.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from vocalis.worker.fleet import FleetTable
from vocalis.worker.lag import LAG_BUCKETS_S, LoopLagMonitor
from vocalis.worker.metrics import admission_families

__all__ = ["MIRROR_INTERVAL_S", "FleetCollector", "FleetMirror", "fleet_registry"]

MIRROR_INTERVAL_S = 1.0

GaugeMode = Literal["livesum", "livemax", "livemin"]
# How a gauge of several processes adds up (default: livesum, e.g. RSS, open fds).
_GAUGE_MODES: dict[str, GaugeMode] = {
    "vocalis_event_loop_lag_max_seconds": "livemax",
    "vocalis_uptime_seconds": "livemax",
    "process_start_time_seconds": "livemin",
    "process_max_fds": "livemax",
}


class FleetCollector(Collector):
    """The admission series of the whole fleet, from the shared table at scrape time."""

    def __init__(self, table: FleetTable, max_sessions: int | None) -> None:
        self._table = table
        self._max_sessions = max_sessions

    def collect(self) -> Iterator[Metric]:
        totals = self._table.totals()
        yield from admission_families(totals, self._max_sessions)
        workers = GaugeMetricFamily(
            "vocalis_worker_live_sessions", "Calls in progress, by worker.", labels=["worker"]
        )
        for index, live in enumerate(totals.live_by_worker):
            workers.add_metric([str(index)], live)
        yield workers
        yield CounterMetricFamily(
            "vocalis_worker_starts",
            "Worker processes started (restarts after a crash included).",
            value=sum(totals.starts_by_worker),
        )


def fleet_registry(
    table: FleetTable, max_sessions: int | None, metrics_dir: str
) -> CollectorRegistry:
    """The registry a fleet worker's `/metrics` writes: table + every process' files."""
    registry = CollectorRegistry()
    registry.register(FleetCollector(table, max_sessions))
    MultiProcessCollector(registry, metrics_dir)  # type: ignore[no-untyped-call]
    return registry


class FleetMirror:
    """Copies this worker's own facts (read from `sources` at scrape time) into multiprocess
    metric objects, and feeds the loop-lag histogram sample by sample."""

    def __init__(self, sources: list[Collector], lag: LoopLagMonitor) -> None:
        self._sources = sources
        # The mirror's objects write files; this registry only keeps their names unique.
        self._registry = CollectorRegistry()
        self._counters: dict[str, Counter] = {}
        self._gauges: dict[str, Gauge] = {}
        self._seen: dict[tuple[str, tuple[str, ...]], float] = {}
        self._task: asyncio.Task[None] | None = None
        lag_histogram = Histogram(
            "vocalis_event_loop_lag_seconds",
            f"How late the event loop woke a {lag.interval_s:g} s timer.",
            buckets=LAG_BUCKETS_S,
            registry=self._registry,
        )
        lag.on_sample = lag_histogram.observe

    def publish(self) -> None:
        # Counters and gauges: a histogram cannot be copied from its buckets, so the one the
        # sources have (loop lag) is fed sample by sample instead.
        for source in self._sources:
            for family in source.collect():
                if family.type == "counter":
                    self._counter(family)
                elif family.type == "gauge":
                    self._gauge(family)

    def _counter(self, family: Metric) -> None:
        for sample in family.samples:
            if not sample.name.endswith("_total"):
                continue  # `_created`: per process, meaningless summed
            names = tuple(sorted(sample.labels))
            counter = self._counters.get(family.name)
            if counter is None:
                counter = Counter(family.name, family.documentation, names, registry=self._registry)
                self._counters[family.name] = counter
            values = tuple(sample.labels[name] for name in names)
            key = (family.name, values)
            series = counter.labels(*values) if names else counter  # exists from 0 on
            delta = sample.value - self._seen.get(key, 0.0)
            if delta > 0:
                series.inc(delta)
                self._seen[key] = sample.value

    def _gauge(self, family: Metric) -> None:
        for sample in family.samples:
            names = tuple(sorted(sample.labels))
            gauge = self._gauges.get(family.name)
            if gauge is None:
                gauge = Gauge(
                    family.name,
                    family.documentation,
                    names,
                    registry=self._registry,
                    multiprocess_mode=_GAUGE_MODES.get(family.name, "livesum"),
                )
                self._gauges[family.name] = gauge
            values = tuple(sample.labels[name] for name in names)
            (gauge.labels(*values) if names else gauge).set(sample.value)

    def start(self) -> None:
        """Publish every `MIRROR_INTERVAL_S` until `aclose()`."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="fleet-mirror")

    async def _run(self) -> None:
        while True:
            self.publish()
            await asyncio.sleep(MIRROR_INTERVAL_S)

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self.publish()  # the last values of a worker that stops stay in the sums
