"""Span events and spans for the faults: the stall watchdog firing (S17) and a socket drop with
its reconnect (S20), each in a traced conformance call."""

from __future__ import annotations

import pytest
from conformance_support import harness, server_vad
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from telemetry_support import in_memory_tracing

from vocalis import telemetry
from vocalis.runtime.agent import Agent
from vocalis.runtime.events import ErrorEvent
from vocalis.runtime.options import AgentSessionOptions
from vocalis.telemetry import names as a

pytestmark = pytest.mark.timeout(60)


async def test_a_stalled_response_carries_the_watchdog_event() -> None:
    scenario = {
        "responses": [
            {
                "say": "This will never be heard.",
                "faults": [
                    {"kind": "stall", "seconds": 60, "after_event": "response.output_item.added"}
                ],
            }
        ]
    }
    provider, exporter = in_memory_tracing()
    options = AgentSessionOptions(turn_detection=server_vad(), stall_timeout_s=3.0)
    async with harness(scenario, options=options, start=False) as h:
        telemetry.attach(h.session, tracer_provider=provider)
        await h.session.start(Agent("You are a test agent."))
        h.say("Are you there?")
        run = await h.response(0, generated=False)
        await h.play(3.1)
        await h.event(ErrorEvent, lambda e: e.code == "response_stalled")
        await h.until(lambda: run.settled)
    [response] = _named(exporter, "vocalis.response")
    assert [(e.name, dict(e.attributes or {})) for e in response.events] == [
        ("vocalis.stall_watchdog", {a.WATCHDOG_ACTION: "cancel"})
    ]
    assert response.attributes is not None
    assert response.attributes[a.STATUS] == "cancelled"
    [message] = _named(exporter, "vocalis.assistant_message")
    assert message.attributes is not None and message.attributes[a.OUTCOME] == "skipped"


async def test_a_socket_drop_ends_the_connection_span_and_opens_a_reconnect() -> None:
    scenario = {
        "responses": [
            {
                "say": "Let me read you the full terms of the warranty, which covers parts.",
                "faults": [
                    {"kind": "stall", "seconds": 60, "after_audio_ms": {"item": 0, "ms": 1000}}
                ],
            }
        ]
    }
    provider, exporter = in_memory_tracing()
    async with harness(scenario, start=False) as h:
        telemetry.attach(h.session, tracer_provider=provider)
        await h.session.start(Agent("You are a test agent."))
        h.say("What does the warranty cover?")
        run = await h.response(0, generated=False)
        await h.until(lambda: len(run.playout.pulled) == 1)
        message = run.playout.pulled[0].message
        await h.until(lambda: message.audio_received_ms >= 1000)
        h.sim.abort()  # the connection drops mid-stream, without a close frame
        await h.play_until(lambda: run.settled, limit_s=10)
        await h.until(lambda: _named(exporter, "vocalis.provider.reconnect") != [])
    first, second = _named(exporter, "vocalis.provider.connection")
    [reconnect] = _named(exporter, "vocalis.provider.reconnect")
    first_attrs, second_attrs = dict(first.attributes or {}), dict(second.attributes or {})
    reconnect_attrs = dict(reconnect.attributes or {})
    assert first_attrs[a.CONNECTION_INDEX] == 1 and second_attrs[a.CONNECTION_INDEX] == 2
    assert first_attrs[a.END_REASON] == reconnect_attrs[a.RECONNECT_REASON]
    assert float(reconnect_attrs[a.OUTAGE_MS]) >= 0  # type: ignore[arg-type]
    assert a.REPLAYED_ITEMS in reconnect_attrs
    # The outage sits between the two connections.
    assert first.end_time == reconnect.start_time
    assert reconnect.end_time == second.start_time
    [call] = _named(exporter, "vocalis.call")
    assert call.attributes is not None and call.attributes[a.RECONNECTS] == 1
    # The cut response (a reply may follow if the session answers the lost turn).
    response = _named(exporter, "vocalis.response")[0]
    assert response.attributes is not None and response.attributes[a.STATUS] == "disconnected"


def _named(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    spans = [s for s in exporter.get_finished_spans() if s.name == name]
    return sorted(spans, key=lambda s: s.start_time or 0)
