"""The session owns why it ended; the bounded event log cannot lose it (issue #14).

A call ended by a bound (here: a provider starting responses faster than they play, ended at
`CallBudget.max_open_responses`) keeps emitting events while it closes — every open response
settles and reports its metrics — so the ending `ErrorEvent` falls out of a bounded event
log. Tools read the reason back from that log (`bench.attacks`' `ended_on`, the CLI's exit
message) and lost it; the reason string itself was overwritten by the provider's own close
notice, which raced the error.
"""

from __future__ import annotations

import asyncio

from bench.hostile import (
    HostileGemini,
    HostileProvider,
    empty_responses,
    gemini_empty_items,
    hostile_client,
)

from vocalis.providers.gemini import GeminiRealtimeModel
from vocalis.runtime.agent import Agent
from vocalis.runtime.call_end import CallEnd, EndCause
from vocalis.runtime.events import ErrorEvent, SessionClosedEvent, TurnMetrics
from vocalis.runtime.options import AgentSessionOptions
from vocalis.runtime.responses import RESPONSE_BUDGET_CODE
from vocalis.runtime.session import AgentSession
from vocalis.transports.memory import MemoryTransport
from vocalis.utils.clock import MonotonicClock


async def test_the_end_reason_survives_the_bounded_event_log() -> None:
    service = HostileGemini(gemini_empty_items(2000))
    async with service.serving() as base_url:
        model = GeminiRealtimeModel(api_key="test-hostile-key", base_url=base_url, reconnect=False)
        clock = MonotonicClock()
        # A log of a few events: what the close emits after the error pushes it out.
        options = AgentSessionOptions(event_log_limit=4)
        session = AgentSession(model, MemoryTransport(clock), clock=clock, options=options)
        settled: list[TurnMetrics] = []
        session.on(TurnMetrics, settled.append)
        assert session.end is None
        await session.start(Agent(instructions="hi"))
        async with asyncio.timeout(30):
            await session.wait_closed()
    end = session.end
    assert end is not None
    assert (end.cause, end.code, end.failed) == (EndCause.FATAL_ERROR, RESPONSE_BUDGET_CODE, True)
    assert end.message is not None and "max_open_responses" in end.message
    assert str(end) == f"fatal provider error: {RESPONSE_BUDGET_CODE}"
    log = session.event_log
    # The scenario holds: the error is gone from the log (responses settled after it) ...
    assert len(settled) >= 4
    assert not [e for e in log if isinstance(e, ErrorEvent)]
    # ... and the last event, which a bounded log always keeps, carries the reason.
    assert log[-1] == SessionClosedEvent(str(end), RESPONSE_BUDGET_CODE)


async def test_an_application_close_is_not_a_failure() -> None:
    provider = HostileProvider(empty_responses(0))
    async with provider.serving() as url:
        model = hostile_client(url)
        clock = MonotonicClock()
        session = AgentSession(model, MemoryTransport(clock), clock=clock)
        await session.start(Agent(instructions="hi"))
        await session.aclose()
    assert session.end == CallEnd(EndCause.CLOSED)
    assert session.end is not None and not session.end.failed
    assert session.event_log[-1] == SessionClosedEvent("closed", None)
