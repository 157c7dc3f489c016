"""Gemini model turns without items count toward the call's item bound (issue #14).

A `toolCall` message with no function call (or only calls already seen) starts and ends a
model turn that carries no item: a settled response of the call, with its records, that no
item bound saw. A service sending `{"toolCall": {}}` forever made the call settle responses
forever. Such a turn now counts as one item of `ProviderLimits.max_call_items` (the OpenAI
twin: `test_empty_responses.py`); past it the call ends with the one `item_budget` error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from vocalis.providers.base import ErrorKind, ProviderError, ProviderLimits
from vocalis.providers.core_events import ResponseEnded, ResponseStarted, ToolCallReady
from vocalis.providers.gemini.protocol import GeminiProtocol
from vocalis.providers.item_bound import ITEM_BUDGET_CODE

LIMIT = 12


def _feed(core: GeminiProtocol, messages: Sequence[Mapping[str, Any]]) -> list[object]:
    outputs: list[object] = []
    for message in messages:
        outputs += core.receive(dict(message))
    return outputs


def test_empty_tool_calls_end_the_call_at_the_item_bound() -> None:
    core = GeminiProtocol(limits=ProviderLimits(max_call_items=LIMIT))
    outputs = _feed(core, [{"toolCall": {}}] * 200)
    errors = [o for o in outputs if isinstance(o, ProviderError)]
    assert [(e.kind, e.code) for e in errors] == [(ErrorKind.FATAL, ITEM_BUDGET_CODE)]
    assert len([o for o in outputs if isinstance(o, ResponseStarted)]) == LIMIT
    assert len([o for o in outputs if isinstance(o, ResponseEnded)]) == LIMIT


def test_repeated_call_ids_count_as_turns_without_items() -> None:
    """A call id the service already used is taken once; repeating it makes empty turns."""
    core = GeminiProtocol(limits=ProviderLimits(max_call_items=LIMIT))
    call = {"toolCall": {"functionCalls": [{"id": "c1", "name": "f", "args": {}}]}}
    outputs = _feed(core, [call] * 200)
    assert len([o for o in outputs if isinstance(o, ToolCallReady)]) == 1
    errors = [o for o in outputs if isinstance(o, ProviderError)]
    assert [e.code for e in errors] == [ITEM_BUDGET_CODE]


def test_tool_calls_cost_their_items_only() -> None:
    """Legit calls are not counted twice: LIMIT calls of fresh ids fit the bound."""
    core = GeminiProtocol(limits=ProviderLimits(max_call_items=LIMIT))
    calls = [
        {"toolCall": {"functionCalls": [{"id": f"c{n}", "name": "f", "args": {"n": n}}]}}
        for n in range(LIMIT)
    ]
    outputs = _feed(core, calls)
    assert not [o for o in outputs if isinstance(o, ProviderError)]
    assert len([o for o in outputs if isinstance(o, ToolCallReady)]) == LIMIT
