"""A worker's `/metrics` text: written by prometheus-client, read back by its parser, with
the call facts its sessions reported (bounded labels only)."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from vocalis.runtime.events import (
    EventEmitter,
    Interrupted,
    MessageMetrics,
    SessionClosedEvent,
    ToolCallFinished,
    TurnMetrics,
)
from vocalis.transports.pacing import PACING
from vocalis.worker import Worker


class _Session:
    """The part of `AgentSession` the worker observes: typed subscriptions (`on`)."""

    def __init__(self) -> None:
        self.emitter = EventEmitter()
        self.on = self.emitter.on


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_text_parses_and_counts_the_calls_facts() -> None:
    worker = Worker(max_sessions=4)
    session = _Session()
    worker.observe(session)  # type: ignore[arg-type]
    session.emitter.emit(
        TurnMetrics(
            response_id="r1",
            origin="server",
            user_speech_end_at=10.0,
            first_audio_played_at=10.6,
            messages=(
                MessageMetrics("m1", 2000.0, 700.0, "partial", history_op="truncate"),
                MessageMetrics("m2", 900.0, 0.0, "skipped", history_op="delete"),
            ),
        )
    )
    session.emitter.emit(ToolCallFinished("c1", "lookup", "boom", True, 0.2, "r1"))
    session.emitter.emit(Interrupted("server_vad", ("r1",), 10.9))
    session.emitter.emit(SessionClosedEvent("closed"))

    samples = _samples(worker.metrics_text())
    assert samples[("vocalis_turn_latency_seconds_count", (("origin", "server"),))] == 1
    assert samples[("vocalis_turn_latency_seconds_sum", (("origin", "server"),))] == pytest.approx(
        0.6
    )
    bucket = ("vocalis_turn_latency_seconds_bucket", (("le", "0.75"), ("origin", "server")))
    assert samples[bucket] == 1
    assert samples[("vocalis_truncations_total", ())] == 1
    assert samples[("vocalis_never_played_deletions_total", ())] == 1
    assert samples[("vocalis_tool_calls_total", (("outcome", "error"),))] == 1
    assert samples[("vocalis_interruptions_total", (("source", "server_vad"),))] == 1
    assert samples[("vocalis_max_sessions", ())] == 4
    assert samples[("vocalis_live_sessions", ())] == 0
    assert samples[("vocalis_event_loop_lag_seconds_count", ())] == 0
    assert samples[("vocalis_sessions_refused_total", (("reason", "at_capacity"),))] == 0
    assert samples[("process_resident_memory_bytes", ())] > 0
    assert samples[("vocalis_caller_audio_dropped_seconds_total", ())] == PACING.dropped_audio_s
    assert samples[("vocalis_calls_closed_total", (("reason", "audio_flood"),))] == (
        PACING.calls_closed
    )


def test_each_worker_shows_only_its_own_calls() -> None:
    first, second = Worker(), Worker()
    session = _Session()
    first.observe(session)  # type: ignore[arg-type]
    session.emitter.emit(ToolCallFinished("c1", "lookup", "{}", False, 0.1, "r1"))
    assert _samples(first.metrics_text())[("vocalis_tool_calls_total", (("outcome", "ok"),))] == 1
    assert _samples(second.metrics_text())[("vocalis_tool_calls_total", (("outcome", "ok"),))] == 0


def test_connections_closed_before_their_head_are_summed_over_listeners() -> None:
    worker = Worker()
    assert "vocalis_http_connections_closed" not in worker.metrics_text()  # no listener yet
    first = {"per_address": 2, "evicted": 0, "head_timeout": 1, "head_too_large": 0}
    second = {"per_address": 1, "evicted": 0, "head_timeout": 0, "head_too_large": 4}
    worker.metrics.watch_connections_closed(first)
    worker.metrics.watch_connections_closed(second)
    first["evicted"] += 5  # read at scrape time, not copied
    samples = _samples(worker.metrics_text())
    closed = {
        labels[0][1]: value
        for (name, labels), value in samples.items()
        if name == "vocalis_http_connections_closed_total"
    }
    assert closed == {"per_address": 3, "evicted": 5, "head_timeout": 1, "head_too_large": 4}
