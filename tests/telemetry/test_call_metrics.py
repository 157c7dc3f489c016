"""The same call's facts as metrics: OpenTelemetry instruments and Prometheus series agree
with the trace (one truncation, one never-played deletion, one tool call, one barge-in)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from telemetry_support import TracedCall, traced_call

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def measured() -> tuple[TracedCall, CollectorRegistry]:
    registry = CollectorRegistry()
    return asyncio.run(traced_call(registry=registry)), registry


def _otel_points(call: TracedCall) -> dict[str, list[Any]]:
    data = call.metrics.get_metrics_data()
    assert data is not None
    points: dict[str, list[Any]] = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                points[metric.name] = list(metric.data.data_points)
    return points


def test_otel_instruments_count_the_calls_facts(
    measured: tuple[TracedCall, CollectorRegistry],
) -> None:
    call, _ = measured
    points = _otel_points(call)
    [latency] = points["vocalis.turn.latency"]
    # Two caller turns were answered (response 1 and the reply to the barge-in).
    assert latency.count == 2 and dict(latency.attributes) == {"origin": "server"}
    assert [p.value for p in points["vocalis.truncations"]] == [1]
    assert [p.value for p in points["vocalis.never_played_deletions"]] == [1]
    assert [(dict(p.attributes), p.value) for p in points["vocalis.tool.calls"]] == [
        ({"outcome": "ok"}, 1)
    ]
    assert [(dict(p.attributes), p.value) for p in points["vocalis.interruptions"]] == [
        ({"source": "server_vad"}, 1)
    ]
    assert [p.value for p in points["vocalis.calls.live"]] == [0]  # started, then closed


def test_prometheus_exposition_parses_and_matches(
    measured: tuple[TracedCall, CollectorRegistry],
) -> None:
    call, registry = measured
    text = generate_latest(registry).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in families.values()
        for s in family.samples
    }
    assert samples[("vocalis_turn_latency_seconds_count", (("origin", "server"),))] == 2
    assert samples[("vocalis_truncations_total", ())] == 1
    assert samples[("vocalis_never_played_deletions_total", ())] == 1
    assert samples[("vocalis_tool_calls_total", (("outcome", "ok"),))] == 1
    assert samples[("vocalis_tool_calls_total", (("outcome", "error"),))] == 0
    assert samples[("vocalis_interruptions_total", (("source", "server_vad"),))] == 1
    [latency] = _otel_points(call)["vocalis.turn.latency"]
    assert samples[("vocalis_turn_latency_seconds_sum", (("origin", "server"),))] == pytest.approx(
        latency.sum
    )
