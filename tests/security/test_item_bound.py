"""A provider's items are bounded per call, however it makes them (issue #14, per-call bound).

The Gemini core had no item bound at all: every model turn, caller turn and function call
became one more item (and one more turn of its server record), and resumption handles,
usage reports and cancelled call ids (any id the service named) were kept without end.

`ProviderLimits.max_call_items` held only for events that create an item
(`conversation.item.added`, `response.output_item.added`, ...). Content for an id the
provider never announced — an agent text or audio delta, a function-call arguments delta, a
caller transcript of an item never committed, an item listed only in `response.done` — made
the core start tracking that item (an account, a message, a caller history item) without
counting it: a provider sending such events without end grew the call without any bound.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

from bench.attacks import _run_call
from bench.common import REPO
from bench.hostile import (
    HostileGemini,
    HostileProvider,
    Send,
    empty_items,
    gemini_empty_items,
    hostile_client,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from vocalis.providers.base import (
    ErrorKind,
    GenerationStarted,
    InputAudioCommitted,
    InputTranscription,
    OperationError,
    ProviderError,
    ProviderLimits,
    SessionClosed,
    SessionOptions,
)
from vocalis.providers.core_events import ItemAnnounced, MessageStarted
from vocalis.providers.gemini import GeminiRealtimeModel
from vocalis.providers.gemini.protocol import GeminiProtocol
from vocalis.providers.openai.formats import audio_format
from vocalis.providers.openai.protocol import OpenAIProtocol

LIMIT = 12


def content_for(kind: int, n: int) -> dict[str, Any]:
    """One hostile event about item `n` (or response `n`) that nobody announced."""
    item, response = f"x{n}", f"r{n % 3}"
    ref = {"response_id": response, "item_id": item, "output_index": 0, "content_index": 0}
    caller = "conversation.item.input_audio_transcription"
    events: list[dict[str, Any]] = [
        {"type": "response.output_text.delta", **ref, "delta": "a"},
        {"type": "response.output_audio.delta", **ref, "delta": "AAAA"},
        {"type": "response.output_audio_transcript.delta", **ref, "delta": "b"},
        {"type": "response.content_part.added", **ref, "part": {"type": "text"}},
        {"type": "response.output_audio.done", **ref},
        {"type": "response.function_call_arguments.delta", **ref, "call_id": n, "delta": "{"},
        {"type": f"{caller}.delta", "item_id": item, "delta": "hi"},
        {"type": f"{caller}.completed", "item_id": item, "transcript": "hi"},
        {"type": f"{caller}.updated", "item_id": item, "transcript": "hi"},
        {"type": "input_audio_buffer.committed", "item_id": item, "previous_item_id": None},
        {"type": "conversation.item.deleted", "item_id": item},
        {"type": "response.created", "response": {"id": f"r{n}"}},
        {
            "type": "response.done",
            "response": {
                "id": response,
                "status": "completed",
                "output": [{"id": f"{item}_{k}", "type": "message"} for k in range(3)],
            },
        },
    ]
    return events[kind]


KINDS = 13


def assert_ended_on_the_item_bound(
    events: list[object], caller_item: type[InputTranscription | InputAudioCommitted]
) -> None:
    """The session closed `fatal` with `item_budget`, and the runtime was told about no more
    than `LIMIT` items: output items of its generations and caller items."""
    closed = [e for e in events if isinstance(e, SessionClosed)]
    assert [c.reason for c in closed] == ["fatal"]
    assert closed[0].error is not None and closed[0].error.code == "item_budget"
    generations = [e.generation for e in events if isinstance(e, GenerationStarted)]
    announced = {i for g in generations for i in g.announced_item_ids}
    callers = {e.item_id for e in events if isinstance(e, caller_item)}
    assert len(announced | callers) <= LIMIT


def reported_items(outputs: Sequence[object]) -> set[str]:
    """Item ids the core reported to the runtime: each becomes part of the call's state there."""
    ids: set[str] = set()
    for out in outputs:
        if isinstance(out, MessageStarted | ItemAnnounced | InputTranscription):
            ids.add(out.item_id)
    return ids


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, KINDS - 1), st.integers(0, 400)), min_size=40, max_size=300)
)
def test_content_for_items_never_announced_counts_against_the_item_bound(
    events: list[tuple[int, int]],
) -> None:
    core = OpenAIProtocol(
        audio_format=audio_format("pcm16"), limits=ProviderLimits(max_call_items=LIMIT)
    )
    outputs: list[object] = []
    for kind, n in events:
        outputs += core.receive(content_for(kind, n))
    errors = [o for o in outputs if isinstance(o, ProviderError)]
    assert all(e.code == "item_budget" and e.kind is ErrorKind.FATAL for e in errors)
    assert len(errors) <= 1  # reported once
    assert len(reported_items(outputs)) <= LIMIT
    assert len(core.mirror) <= LIMIT
    assert len(core.responses.accounts) <= LIMIT


def test_a_flood_of_deltas_for_unannounced_items_ends_the_call_once() -> None:
    core = OpenAIProtocol(
        audio_format=audio_format("pcm16"), limits=ProviderLimits(max_call_items=LIMIT)
    )
    outputs: list[object] = []
    for n in range(500):
        outputs += core.receive(content_for(0, n))
    errors = [o for o in outputs if isinstance(o, ProviderError)]
    assert [(e.kind, e.code) for e in errors] == [(ErrorKind.FATAL, "item_budget")]
    assert len(reported_items(outputs)) == LIMIT
    assert len(core.responses.accounts) == LIMIT


def test_deleting_items_gives_no_room_back_for_new_caller_items() -> None:
    """The runtime's history keeps a caller item the provider deleted: commit-and-delete
    cycles still count, one item each."""
    core = OpenAIProtocol(
        audio_format=audio_format("pcm16"), limits=ProviderLimits(max_call_items=LIMIT)
    )
    outputs: list[object] = []
    for n in range(100):
        outputs += core.receive(content_for(9, n))  # committed
        outputs += core.receive(content_for(10, n))  # deleted
    assert [e.code for e in outputs if isinstance(e, ProviderError)] == ["item_budget"]
    assert len(core.mirror) == 0


async def test_a_hostile_provider_sending_empty_items_ends_the_call_within_the_bound() -> None:
    """End to end over a loopback socket: the session closes `fatal` with `item_budget`, and
    the runtime was told about no more than `max_call_items` items."""
    provider = HostileProvider(empty_items(400), start_on="response.create")
    async with provider.serving() as url:
        model = hostile_client(url, ProviderLimits(max_call_items=LIMIT))
        session = await model.connect(SessionOptions(turn_detection=None))
        events: list[object] = []

        async def read() -> None:
            async for event in session.events():
                events.append(event)

        try:
            async with asyncio.timeout(20):
                reader = asyncio.create_task(read())
                with contextlib.suppress(OperationError):  # the flood answers, then the end
                    await session.generate_reply()
                await reader
        finally:
            await session.aclose()
    assert_ended_on_the_item_bound(events, InputTranscription)


# --------------------------------------------------------------------------- Gemini Live


def gemini_event(kind: int, n: int) -> dict[str, Any]:
    """One hostile Gemini message: each kind makes the core start one more item."""
    messages: list[dict[str, Any]] = [
        {"serverContent": {"inputTranscription": {"text": "h"}}},
        {"serverContent": {"modelTurn": {"parts": [{"text": "a"}]}}},
        {"serverContent": {"turnComplete": True}},
        {"serverContent": {"interrupted": True}},
        {"toolCall": {"functionCalls": [{"id": f"c{n}", "name": "f", "args": {}}]}},
        {"toolCallCancellation": {"ids": [f"c{n}", f"never{n}"]}},
        {"sessionResumptionUpdate": {"resumable": True, "newHandle": f"h{n}"}},
        {"usageMetadata": {"totalTokenCount": n}},
    ]
    return messages[kind]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 7), st.integers(0, 400)), min_size=40, max_size=300))
def test_a_gemini_service_cannot_make_a_call_hold_more_items_than_the_bound(
    events: list[tuple[int, int]],
) -> None:
    limit = 4  # small: a random stream passes it often
    core = GeminiProtocol(limits=ProviderLimits(max_call_items=limit))
    outputs: list[object] = []
    for kind, n in events:
        outputs += core.receive(gemini_event(kind, n))
    errors = [o for o in outputs if isinstance(o, ProviderError)]
    assert all(e.code == "item_budget" and e.kind is ErrorKind.FATAL for e in errors)
    assert len(errors) <= 1
    reported = {o.item_id for o in outputs if isinstance(o, MessageStarted | ItemAnnounced)}
    reported |= {o.item_id for o in outputs if isinstance(o, InputAudioCommitted)}
    assert len(reported) <= limit
    assert len(core.server_record) <= limit
    assert len(core.cancelled_calls) <= limit  # only calls it made


async def test_a_hostile_gemini_service_sending_empty_turns_ends_the_call() -> None:
    """End to end over a loopback socket, as for OpenAI: the session closes `fatal` with the
    same `item_budget` error, and the runtime was told about no more than the bound."""
    service = HostileGemini(gemini_empty_items(400))
    async with service.serving() as base_url:
        model = GeminiRealtimeModel(
            api_key="test-hostile-key",
            base_url=base_url,
            limits=ProviderLimits(max_call_items=LIMIT),
            reconnect=False,
        )
        session = await model.connect(SessionOptions())
        events: list[object] = []
        try:
            async with asyncio.timeout(20):
                async for event in session.events():
                    events.append(event)
        finally:
            await session.aclose()
    assert_ended_on_the_item_bound(events, InputAudioCommitted)


# --------------------------------------------------------------------------- `vocalis run`


async def _quota_gone(send: Send) -> None:
    error = {"code": "insufficient_quota", "message": "You exceeded your current quota."}
    await send({"type": "error", "event_id": "e9", "error": error})


async def test_a_fatal_provider_error_ends_vocalis_run_with_its_reason() -> None:
    """`vocalis run` waited for the caller's input to end (and the agent to be idle) after the
    session had closed on a fatal provider error — the item bound's end included — then
    reported a timeout instead of the reason. A 60 s caller file with a 20 s deadline: only a
    run that stops when the session does ends with the provider's reason."""
    provider = HostileProvider(_quota_gone, start_on="input_audio_buffer.append")  # in the call
    async with provider.serving() as url:
        run = await _run_call(REPO / "src", url, max_seconds=20, caller_s=60)
    assert run.code == 1, run.text
    assert "exceeded your current quota" in run.text
    assert "did not finish" not in run.text
