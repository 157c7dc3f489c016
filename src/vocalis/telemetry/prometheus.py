"""The call facts as Prometheus metrics (prometheus-client), for a worker's `/metrics`.

Why a registry per owner (not prometheus-client's global one): a process may run several
workers in tests, and each `/metrics` must show exactly its own calls.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from vocalis.telemetry.facts import ResponseFacts
from vocalis.telemetry.metrics import LATENCY_BUCKETS_S, ToolOutcome

__all__ = ["PrometheusCallMetrics"]


class PrometheusCallMetrics:
    """A `CallMetricsRecorder` writing into `registry` (labels: bounded sets only)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.turn_latency = Histogram(
            "vocalis_turn_latency_seconds",
            "End of the caller's speech to the first agent audio frame played.",
            ["origin"],
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )
        self.truncations = Counter(
            "vocalis_truncations",
            "Agent messages cut to what the caller heard (truncate sent to the provider).",
            registry=registry,
        )
        self.deletions = Counter(
            "vocalis_never_played_deletions",
            "Agent messages generated but never played, deleted from the history.",
            registry=registry,
        )
        self.tool_calls = Counter(
            "vocalis_tool_calls",
            "Tool calls finished, by outcome (ok or error).",
            ["outcome"],
            registry=registry,
        )
        self.interruptions = Counter(
            "vocalis_interruptions",
            "Agent speech cut off, by source (server_vad, local_vad, text, api, watchdog).",
            ["source"],
            registry=registry,
        )
        for outcome in ("ok", "error"):
            self.tool_calls.labels(outcome)  # both series exist from the start (at 0)

    # Live calls are the worker's admission count (`vocalis_live_sessions`), not counted twice.
    def call_started(self) -> None:
        pass

    def call_ended(self) -> None:
        pass

    def response_settled(self, facts: ResponseFacts) -> None:
        if facts.turn_latency_s is not None:
            self.turn_latency.labels(facts.origin).observe(facts.turn_latency_s)
        if facts.truncations:
            self.truncations.inc(facts.truncations)
        if facts.never_played_deletions:
            self.deletions.inc(facts.never_played_deletions)

    def tool_finished(self, outcome: ToolOutcome) -> None:
        self.tool_calls.labels(outcome).inc()

    def interrupted(self, source: str) -> None:
        self.interruptions.labels(source).inc()
