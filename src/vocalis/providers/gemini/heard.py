"""The heard contract on a provider that cannot truncate: pure decisions.

Gemini Live has no truncate and no delete. After a barge-in the service keeps the model turn
as it was *sent* — generated faster than real time, so far more than the caller heard. The
client keeps a record of what the service holds (:class:`ServerTurn`, filled by the protocol
core) and, at each heard checkpoint (the runtime's ``sync_history`` with the heard history),
compares the two and plans one of:

* :class:`Reseed` (``HeardStrategy.RESEED``, the default): open a fresh session and seed it
  with the heard history as ``clientContent`` turns; the service then holds exactly what was
  heard. Exact, costs one connection setup and the history's text tokens.
* :class:`Correct` (``HeardStrategy.CORRECTION``): append a note turn to the same session
  saying what the caller actually heard. Cheap and instant, but the unheard words stay in the
  service's history: the model is *told*, not made to forget.
* both (``HeardStrategy.CORRECT_THEN_RESEED``): the note at once (the caller is usually still
  talking), then a re-seed at the next checkpoint, when the answer to the barge-in has
  settled — the memory ends up exact and the new connection's setup never delays an answer.
* nothing (``HeardStrategy.NONE``): what other frameworks do; the mismatch stays.

Guarantees are spelled out in ``docs/heard-contract.md``.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from vocalis.conversation.items import (
    ConversationItem,
    FunctionCallItem,
    FunctionCallOutputItem,
    MessageItem,
)

TurnKind = Literal["user", "model", "function_call", "function_response"]


class HeardStrategy(enum.Enum):
    RESEED = "reseed"
    CORRECTION = "correction"
    CORRECT_THEN_RESEED = "correct_then_reseed"
    NONE = "none"


@dataclass(slots=True)
class ServerTurn:
    """One turn as the service holds it. ``text`` of a model turn is what was *sent*."""

    kind: TurnKind
    item_id: str
    text: str
    audio_ms: float = 0.0
    call_id: str | None = None


@dataclass(frozen=True, slots=True)
class Unheard:
    """A model turn the service holds with more than the caller heard."""

    item_id: str
    sent: str
    heard: str


@dataclass(frozen=True, slots=True)
class NoChange:
    pass


@dataclass(frozen=True, slots=True)
class Reseed:
    """Start a fresh session holding exactly ``items`` (the heard history)."""

    items: tuple[ConversationItem, ...]
    unheard: tuple[Unheard, ...]


@dataclass(frozen=True, slots=True)
class Correct:
    """Append ``note`` (a user-role text turn) to the running session."""

    note: str
    unheard: tuple[Unheard, ...]


HeardPlan: TypeAlias = NoChange | Reseed | Correct


def _norm(text: str) -> str:
    return " ".join(text.split())


def unheard_turns(record: Sequence[ServerTurn], items: Sequence[ConversationItem]) -> list[Unheard]:
    """Model turns whose sent text differs from the heard text (absent from history = unheard)."""
    heard = {item.id: item.text for item in items if isinstance(item, MessageItem)}
    out = []
    for turn in record:
        if turn.kind != "model":
            continue
        said = heard.get(turn.item_id, "")
        if _norm(said) != _norm(turn.text):
            out.append(Unheard(turn.item_id, turn.text, said))
    return out


def missing_items(
    record: Sequence[ServerTurn], items: Sequence[ConversationItem]
) -> list[ConversationItem]:
    """Heard items the service does not hold (e.g. lost with a connection it resumed from)."""
    known = {turn.item_id for turn in record} | {t.call_id for t in record if t.call_id}
    out: list[ConversationItem] = []
    for item in items:
        if isinstance(item, MessageItem):
            wanted = bool(item.text.strip()) and item.id not in known
        elif isinstance(item, FunctionCallItem | FunctionCallOutputItem):
            wanted = item.call_id not in known and item.id not in known
        else:
            wanted = False
        if wanted:
            out.append(item)
    return out


def correction_note(unheard: Sequence[Unheard]) -> str:
    """The note a correction turn carries: what the caller actually heard, per cut turn."""
    lines = []
    for cut in unheard:
        if cut.heard.strip():
            lines.append(
                f'The caller interrupted your reply and heard only: "{_norm(cut.heard)}". '
                "They did not hear anything you said after that."
            )
        else:
            first = " ".join(cut.sent.split()[:6])
            lines.append(f'The caller did not hear your reply that began: "{first}".')
    return "[Context note, not from the caller] " + " ".join(lines)


def plan_heard_sync(
    strategy: HeardStrategy,
    record: Sequence[ServerTurn],
    items: Sequence[ConversationItem],
    corrected: frozenset[str] = frozenset(),
    *,
    reseed_allowed: bool = True,
) -> HeardPlan:
    """What to do so the model's memory matches the heard history ``items``.

    ``corrected``: model turns a note already told the model about (CORRECT_THEN_RESEED
    re-seeds once only those remain). ``reseed_allowed=False`` (the `ReseedBudget` is
    spent): a note for what no note told yet; the re-seed — also one for heard items missing
    from the service — waits for a checkpoint the budget allows.
    """
    if strategy is HeardStrategy.NONE:
        return NoChange()
    unheard = tuple(unheard_turns(record, items))
    missing = missing_items(record, items)
    if not unheard and not missing:
        return NoChange()
    fresh = tuple(cut for cut in unheard if cut.item_id not in corrected)
    if not reseed_allowed:  # a note now; the re-seed at a checkpoint the budget allows
        return Correct(correction_note(fresh), fresh) if fresh else NoChange()
    if strategy is HeardStrategy.RESEED or missing:
        return Reseed(tuple(items), unheard)
    if strategy is HeardStrategy.CORRECT_THEN_RESEED and not fresh:
        return Reseed(tuple(items), unheard)
    return Correct(correction_note(fresh), fresh)


class ReseedBudget:
    """At most ``per_minute`` re-seeds in any 60 s (``now``: any monotonic seconds).

    A re-seed is a new connection and the whole heard history sent again. A service that
    keeps producing turns nobody hears (a hostile peer, text in an audio session) had the
    client re-seed after every one: 2,000 connections in 27 s, traffic quadratic in the
    call's length. Past the budget a checkpoint corrects with a note and the re-seed waits
    for the next checkpoint the budget allows (like ``CORRECT_THEN_RESEED``).
    """

    def __init__(self, per_minute: int) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be at least 1")
        self._limit = per_minute
        self._spent: deque[float] = deque()

    def allows(self, now: float) -> bool:
        while self._spent and now - self._spent[0] >= 60.0:
            self._spent.popleft()
        return len(self._spent) < self._limit

    def spend(self, now: float) -> None:
        self._spent.append(now)


def record_of(items: Sequence[ConversationItem]) -> list[ServerTurn]:
    """The service's history right after it was seeded with ``items`` (as
    ``wire.history_turns`` sends them)."""
    calls = {i.call_id for i in items if isinstance(i, FunctionCallItem)}
    outputs = {i.call_id for i in items if isinstance(i, FunctionCallOutputItem)}
    record: list[ServerTurn] = []
    for item in items:
        if isinstance(item, MessageItem) and item.text.strip() and item.role != "system":
            kind: TurnKind = "model" if item.role == "assistant" else "user"
            record.append(ServerTurn(kind, item.id, item.text))
        elif isinstance(item, FunctionCallItem) and item.call_id in outputs:
            record.append(
                ServerTurn("function_call", item.id, item.arguments, call_id=item.call_id)
            )
        elif isinstance(item, FunctionCallOutputItem) and item.call_id in calls:
            record.append(
                ServerTurn("function_response", item.id, item.output, call_id=item.call_id)
            )
    return record


def note_turn(note: str) -> dict[str, Any]:
    return {"role": "user", "parts": [{"text": note}]}
