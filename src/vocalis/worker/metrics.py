"""`/metrics` in the Prometheus text exposition format (version 0.0.4), without a dependency.

Why it exists: a fleet of workers behind a load balancer is run by dashboards and alerts —
live calls per worker (capacity planning, autoscaling), event-loop lag (overload before it is
audible), refusals (too few workers) and errors. A dozen series do not justify a client
library; the format is simple and is checked line by line in the tests.

Only bounded label values are used (refusal reasons, error kinds): per-call or per-error-code
labels would grow the series count without limit.
"""

from __future__ import annotations

import math
import os
import resource
import sys
import time
from dataclasses import dataclass, field

from vocalis.worker.admission import Admission
from vocalis.worker.lag import LoopLagMonitor

__all__ = ["CONTENT_TYPE", "ErrorCounters", "Exposition", "process_rss_bytes", "render_metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

ErrorKind = str  # "session_error" | "session_fatal" | "call_failed"


@dataclass
class ErrorCounters:
    """Errors seen by the worker's calls, by kind (bounded set)."""

    counts: dict[ErrorKind, int] = field(
        default_factory=lambda: {"session_error": 0, "session_fatal": 0, "call_failed": 0}
    )

    def add(self, kind: ErrorKind) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1


def _value(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Exposition:
    """Builds the text: one HELP/TYPE header per metric family, then its samples."""

    def __init__(self) -> None:
        self._lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str) -> None:
        self._lines.append(f"# HELP {name} {help_text}")
        self._lines.append(f"# TYPE {name} {kind}")

    def sample(self, name: str, value: float, labels: dict[str, str] | None = None) -> None:
        if labels:
            inner = ",".join(f'{k}="{_escape_label(v)}"' for k, v in labels.items())
            self._lines.append(f"{name}{{{inner}}} {_value(value)}")
        else:
            self._lines.append(f"{name} {_value(value)}")

    def text(self) -> str:
        return "\n".join(self._lines) + "\n"


def process_rss_bytes() -> int:
    """Resident set size now (Linux /proc; elsewhere the peak from getrusage)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            pages = int(statm.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def _open_fds() -> int | None:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return None


def render_metrics(
    admission: Admission,
    lag: LoopLagMonitor,
    errors: ErrorCounters,
    *,
    started_at: float,
) -> str:
    """The worker's metrics now, as Prometheus text."""
    out = Exposition()
    out.family("vocalis_live_sessions", "gauge", "Calls in progress on this worker.")
    out.sample("vocalis_live_sessions", admission.live)
    if admission.max_sessions is not None:
        out.family("vocalis_max_sessions", "gauge", "Admission limit (--max-sessions).")
        out.sample("vocalis_max_sessions", admission.max_sessions)
    out.family("vocalis_draining", "gauge", "1 while draining (no new calls), else 0.")
    out.sample("vocalis_draining", 1 if admission.draining else 0)
    out.family("vocalis_sessions_accepted_total", "counter", "Calls admitted.")
    out.sample("vocalis_sessions_accepted_total", admission.accepted_total)
    out.family("vocalis_sessions_finished_total", "counter", "Admitted calls that ended.")
    out.sample("vocalis_sessions_finished_total", admission.finished_total)
    out.family("vocalis_sessions_refused_total", "counter", "Calls refused, by reason.")
    for reason, count in sorted(admission.refused_total.items()):
        out.sample("vocalis_sessions_refused_total", count, {"reason": reason})
    out.family(
        "vocalis_errors_total",
        "counter",
        "Errors by kind: session_error (reported, recovered), session_fatal (ended a call), "
        "call_failed (the call handler raised).",
    )
    for kind, count in sorted(errors.counts.items()):
        out.sample("vocalis_errors_total", count, {"kind": kind})

    hist = lag.histogram
    out.family(
        "vocalis_event_loop_lag_seconds",
        "histogram",
        f"How late the event loop woke a {lag.interval_s:g} s timer.",
    )
    for bound, cumulative in hist.cumulative():
        out.sample("vocalis_event_loop_lag_seconds_bucket", cumulative, {"le": _value(bound)})
    out.sample("vocalis_event_loop_lag_seconds_bucket", hist.count, {"le": "+Inf"})
    out.sample("vocalis_event_loop_lag_seconds_sum", hist.sum)
    out.sample("vocalis_event_loop_lag_seconds_count", hist.count)
    out.family(
        "vocalis_event_loop_lag_max_seconds",
        "gauge",
        f"Largest event-loop lag in the last {lag.window_s:g} s.",
    )
    out.sample("vocalis_event_loop_lag_max_seconds", lag.max_recent_s)

    out.family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.")
    out.sample("process_resident_memory_bytes", process_rss_bytes())
    fds = _open_fds()
    if fds is not None:
        out.family("process_open_fds", "gauge", "Number of open file descriptors.")
        out.sample("process_open_fds", fds)
    out.family("process_start_time_seconds", "gauge", "Start time of the process since the epoch.")
    out.sample("process_start_time_seconds", round(started_at, 3))
    out.family("vocalis_uptime_seconds", "gauge", "Seconds since the worker started.")
    out.sample("vocalis_uptime_seconds", round(max(0.0, time.time() - started_at), 3))
    return out.text()
