"""Responses without items count toward the call's item bound (issue #14, per-call bound).

A provider pairing `response.created` with `response.done` (completed, no output) made each
pair a settled response of the call — its turn metrics, its event-log records, ~4 KB of
`vocalis run`'s memory — and no bound saw one: paced at 5 ms, 4,000 pairs grew the call by
17 MB and it never ended (only an unpaced flood met the open-response bound). Each such
response now counts as one item of `ProviderLimits.max_call_items`; past it the call ends.
"""

from __future__ import annotations

import asyncio

from bench.hostile import HostileProvider, empty_responses, hostile_client

from vocalis.providers.base import ErrorKind, ProviderError, ProviderLimits
from vocalis.providers.core_events import ResponseEnded
from vocalis.providers.item_bound import ITEM_BUDGET_CODE
from vocalis.providers.openai.formats import audio_format
from vocalis.providers.openai.protocol import OpenAIProtocol
from vocalis.runtime.agent import Agent
from vocalis.runtime.call_end import EndCause
from vocalis.runtime.events import TurnMetrics
from vocalis.runtime.session import AgentSession
from vocalis.transports.memory import MemoryTransport
from vocalis.utils.clock import MonotonicClock

LIMIT = 12


def pair(n: int, output: list[dict[str, object]] | None = None) -> list[dict[str, object]]:
    response = {"id": f"r{n}", "object": "realtime.response"}
    done = {**response, "status": "completed", "output": output or []}
    return [
        {"type": "response.created", "response": {**response, "status": "in_progress"}},
        {"type": "response.done", "response": done},
    ]


def test_responses_without_items_end_the_call_at_the_item_bound() -> None:
    core = OpenAIProtocol(
        audio_format=audio_format("pcm16"), limits=ProviderLimits(max_call_items=LIMIT)
    )
    outputs: list[object] = []
    for n in range(200):
        for event in pair(n):
            outputs += core.receive(event)
    errors = [o for o in outputs if isinstance(o, ProviderError)]
    assert [(e.kind, e.code) for e in errors] == [(ErrorKind.FATAL, ITEM_BUDGET_CODE)]
    assert len([o for o in outputs if isinstance(o, ResponseEnded)]) <= LIMIT + 1


def test_a_response_with_items_costs_its_items_only() -> None:
    """Legit responses are not counted twice: one message each, LIMIT of them fit."""
    core = OpenAIProtocol(
        audio_format=audio_format("pcm16"), limits=ProviderLimits(max_call_items=LIMIT)
    )
    outputs: list[object] = []
    for n in range(LIMIT):
        for event in pair(n, [{"id": f"m{n}", "type": "message", "role": "assistant"}]):
            outputs += core.receive(event)
    assert not [o for o in outputs if isinstance(o, ProviderError)]
    assert len([o for o in outputs if isinstance(o, ResponseEnded)]) == LIMIT


async def test_a_paced_flood_of_empty_responses_ends_the_session() -> None:
    """Over a loopback socket, paced (so the open-response bound never sees more than one):
    the session ends on the item bound, having settled no more responses than it allows."""
    provider = HostileProvider(empty_responses(400, pace_s=0.002))
    async with provider.serving() as url:
        model = hostile_client(url, ProviderLimits(max_call_items=LIMIT))
        clock = MonotonicClock()
        session = AgentSession(model, MemoryTransport(clock), clock=clock)
        settled: list[TurnMetrics] = []
        session.on(TurnMetrics, settled.append)
        await session.start(Agent(instructions="hi"))
        async with asyncio.timeout(30):
            await session.wait_closed()
    assert session.end is not None
    assert (session.end.cause, session.end.code) == (EndCause.FATAL_ERROR, ITEM_BUDGET_CODE)
    assert 0 < len(settled) <= LIMIT + 1
    assert session.history_json()["metrics_summary"]["turns"] == len(settled)
