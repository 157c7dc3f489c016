"""A pool's `/metrics` sums: real writer processes in prometheus-client's multiprocess mode.

Two worker-like processes each mirror their own facts (a counter, a summed gauge, a max gauge,
loop-lag samples) into the pool's metrics folder and exit; one scrape of the folder shows the
sums, and a dead worker's live gauges leave the sum while its counters stay. Multiprocess mode
is chosen when prometheus-client is imported, so the writers are separate interpreters.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from prometheus_client import generate_latest
from prometheus_client.multiprocess import mark_process_dead
from prometheus_client.parser import text_string_to_metric_families

from vocalis.worker.fleet import FleetTable
from vocalis.worker.fleet_metrics import fleet_registry

WRITER = """
import sys
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from vocalis.worker.fleet_metrics import FleetMirror
from vocalis.worker.lag import LoopLagMonitor

errors, rss, lag_max = (float(v) for v in sys.argv[1:4])

class Facts:
    def collect(self):
        family = CounterMetricFamily("vocalis_errors", "Errors by kind.", labels=["kind"])
        family.add_metric(["call_failed"], errors)
        yield family
        yield GaugeMetricFamily("process_resident_memory_bytes", "RSS.", value=rss)
        yield GaugeMetricFamily("vocalis_event_loop_lag_max_seconds", "Max lag.", value=lag_max)

lag = LoopLagMonitor()
mirror = FleetMirror([Facts()], lag)
lag.record(0.0, lag_max)
mirror.publish()
print(__import__("os").getpid())
"""


def write(folder: Path, errors: int, rss: int, lag_max: float) -> int:
    done = subprocess.run(
        [sys.executable, "-c", WRITER, str(errors), str(rss), str(lag_max)],
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return int(done.stdout)


def scrape(table: FleetTable, folder: Path) -> dict[str, float]:
    text = generate_latest(fleet_registry(table, 4, str(folder))).decode()
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


def test_one_scrape_sums_the_workers_and_forgets_a_dead_ones_gauges(tmp_path: Path) -> None:
    folder = tmp_path / "metrics"
    folder.mkdir()
    table = FleetTable.create(tmp_path / "admission", 2)
    first = write(folder, errors=3, rss=100, lag_max=0.2)
    write(folder, errors=4, rss=50, lag_max=0.05)

    samples = scrape(table, folder)
    assert samples["vocalis_errors_total{kind=call_failed}"] == 7
    assert samples["process_resident_memory_bytes"] == 150
    assert samples["vocalis_event_loop_lag_max_seconds"] == 0.2
    assert samples["vocalis_event_loop_lag_seconds_count"] == 2
    assert samples["vocalis_max_sessions"] == 4  # admission series: from the table

    mark_process_dead(first, str(folder))  # type: ignore[no-untyped-call]
    samples = scrape(table, folder)
    assert samples["vocalis_errors_total{kind=call_failed}"] == 7  # totals never go back
    assert samples["process_resident_memory_bytes"] == 50
    assert samples["vocalis_event_loop_lag_max_seconds"] == 0.05
