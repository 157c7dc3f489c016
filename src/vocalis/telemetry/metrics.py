"""Call metrics: the same facts as the spans, counted (OpenTelemetry instruments here, the
Prometheus ones in `prometheus.py`), fed by one observer of the session's events.

Why counters next to traces: traces answer "what happened in *this* call", metrics answer "how
often, how slow, across all calls" — the turn latency distribution, how many answers were cut
(truncations) or never heard (deletions), how often tools fail, how many calls run. Every label
is a bounded set (response origin, interrupt source, tool outcome): never a call, item or
tool-call id, which would grow the series count without limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

from opentelemetry.metrics import CallbackOptions, Meter, Observation

from vocalis.runtime.events import (
    Interrupted,
    SessionClosedEvent,
    ToolCallFinished,
    TurnMetrics,
)
from vocalis.telemetry.facts import ResponseFacts, response_facts
from vocalis.telemetry.tracer import Observable

__all__ = [
    "LATENCY_BUCKETS_S",
    "CallMetricsRecorder",
    "LagSource",
    "OtelCallMetrics",
    "ToolOutcome",
    "observe_call",
    "observe_loop_lag",
]

ToolOutcome = Literal["ok", "error"]

# Turn latency bucket bounds (seconds): conversational answers live between 0.3 and 2 s.
LATENCY_BUCKETS_S: tuple[float, ...] = (0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)


class CallMetricsRecorder(Protocol):
    """Where one back end counts the facts of calls (all methods are cheap and never raise)."""

    def call_started(self) -> None: ...

    def call_ended(self) -> None: ...

    def response_settled(self, facts: ResponseFacts) -> None: ...

    def tool_finished(self, outcome: ToolOutcome) -> None: ...

    def interrupted(self, source: str) -> None: ...


def observe_call(session: Observable, recorders: Sequence[CallMetricsRecorder]) -> None:
    """Count one call's facts in every recorder, from now until the session closes."""
    recorders = tuple(recorders)
    if not recorders:
        return
    for recorder in recorders:
        recorder.call_started()

    def settled(event: TurnMetrics) -> None:
        facts = response_facts(event)
        for recorder in recorders:
            recorder.response_settled(facts)

    def tool(event: ToolCallFinished) -> None:
        for recorder in recorders:
            recorder.tool_finished("error" if event.is_error else "ok")

    def interrupted(event: Interrupted) -> None:
        for recorder in recorders:
            recorder.interrupted(event.source)

    def closed(_event: SessionClosedEvent) -> None:
        for recorder in recorders:
            recorder.call_ended()

    session.on(TurnMetrics, settled)
    session.on(ToolCallFinished, tool)
    session.on(Interrupted, interrupted)
    session.on(SessionClosedEvent, closed)


class OtelCallMetrics:
    """The facts as OpenTelemetry instruments (exported by whatever `MeterProvider` is set)."""

    def __init__(self, meter: Meter) -> None:
        self._latency = meter.create_histogram(
            "vocalis.turn.latency",
            unit="s",
            description="End of the caller's speech to the first agent audio frame played.",
            explicit_bucket_boundaries_advisory=list(LATENCY_BUCKETS_S),
        )
        self._truncations = meter.create_counter(
            "vocalis.truncations",
            description="Agent messages cut to what the caller heard (truncate sent).",
        )
        self._deletions = meter.create_counter(
            "vocalis.never_played_deletions",
            description="Agent messages generated but never played, deleted from the history.",
        )
        self._tools = meter.create_counter(
            "vocalis.tool.calls", description="Tool calls finished, by outcome (ok or error)."
        )
        self._interruptions = meter.create_counter(
            "vocalis.interruptions", description="Agent speech cut off, by source."
        )
        self._live = meter.create_up_down_counter(
            "vocalis.calls.live", description="Calls (agent sessions) in progress."
        )

    def call_started(self) -> None:
        self._live.add(1)

    def call_ended(self) -> None:
        self._live.add(-1)

    def response_settled(self, facts: ResponseFacts) -> None:
        if facts.turn_latency_s is not None:
            self._latency.record(facts.turn_latency_s, {"origin": facts.origin})
        if facts.truncations:
            self._truncations.add(facts.truncations)
        if facts.never_played_deletions:
            self._deletions.add(facts.never_played_deletions)

    def tool_finished(self, outcome: ToolOutcome) -> None:
        self._tools.add(1, {"outcome": outcome})

    def interrupted(self, source: str) -> None:
        self._interruptions.add(1, {"source": source})


class LagSource(Protocol):
    """An event-loop lag sampler (the worker's `LoopLagMonitor`)."""

    @property
    def max_recent_s(self) -> float: ...


def observe_loop_lag(meter: Meter, lag: LagSource) -> None:
    """Report the sampler's recent maximum lag as an observable gauge (read at export)."""

    def read(_options: CallbackOptions) -> list[Observation]:
        return [Observation(lag.max_recent_s)]

    meter.create_observable_gauge(
        "vocalis.event_loop.lag",
        callbacks=[read],
        unit="s",
        description="Largest recent event-loop lag (how late a timer woke): overload signal.",
    )
