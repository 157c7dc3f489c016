"""The heard ledger: playout results in, history changes and provider operations out.

This is the heard contract as a pure function (no I/O, no clock, no asyncio), so it can be
property-tested exhaustively. It is the only place that decides truncate vs delete vs keep:
providers execute the operations it returns exactly (keeping only wire concerns, such as a
cut retried at the server's own audio length). The runtime collects what happened to one
provider response — which output items the provider announced, and for every message it
pulled, how the transport played it — and calls `settle_response`. The result says:

* which items the local history gains (assistant messages with the *heard* text, complete
  function calls), in output order;
* which provider operations make the provider's memory equal to what the caller heard.

Rules (each one is a field bug somewhere else, see docs/heard-contract.md):

* `full` → the message is kept with its whole text; no operation (P3, P8: never truncate a
  message that played to the end). If the provider cut the item's audio short (cancelled or
  disconnected mid-item), the text is the prefix matching the audio that exists, and the item
  is truncated at that audio so the provider drops the transcript that ran ahead of it.
* `partial` at or past the end of a *complete* item's audio (a clear that landed after the last
  sample) → everything was heard: kept whole, no operation (a truncate would only make the
  provider drop the transcript of audio the caller heard).
* `partial` with ≥1 ms audible → kept with the word-boundary prefix of what played,
  `interrupted=True`, and `Truncate(item, floor(min(played_ms, received_ms)))` — clamped to the
  audio the provider actually sent, because the transport clock can run ahead of it (P4, P5, S4).
* never audible — `skipped`, `partial` at < 1 ms, a message with no audio at all, or a message
  the provider announced that the runtime never pulled → `Delete(item)`, never a truncate at 0
  (P7), and nothing in the local history (S1-S3; LiveKit gap §8.1).
* function calls → kept only when complete (the runtime answers every kept call exactly once);
  an announced call whose arguments never completed is deleted, so the provider never holds an
  unanswerable call.
* text-only messages (no provider audio: shown as text, or voiced by a TTS fallback) cannot be
  truncated; a partly delivered one becomes `ReplaceText(item, heard)`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

from vocalis.conversation.heard import DEFAULT_MS_PER_CHAR, WordTiming, heard_prefix
from vocalis.conversation.items import ConversationItem, CutBy, FunctionCallItem, MessageItem

Playout = Literal["full", "partial", "skipped"]
ItemKind = Literal["message", "function_call"]


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True, slots=True)
class AnnouncedItem:
    """An output item the provider announced for the response (pulled or not)."""

    item_id: str
    kind: ItemKind


@dataclass(frozen=True, slots=True)
class MessageOutcome:
    """How one pulled message went out to the caller.

    `played_ms` comes from the transport's playback clock (frames played / marks acked);
    `received_ms` is the audio the provider sent for this item. `has_audio=False` marks a
    provider item without audio (text-only): its `played_ms`/`received_ms` then describe the
    TTS fallback audio if any, and `playout` says whether its text was delivered.
    """

    item_id: str
    playout: Playout
    played_ms: float
    received_ms: float
    generated_text: str
    has_audio: bool = True
    # False when the item's audio stopped early (cancelled, disconnected): the transcript may
    # run ahead of the audio, so the word estimate must not spread it over received_ms only.
    audio_complete: bool = True
    # Who stopped the audio early when it was not the caller (`audio_complete=False` only):
    # such a message is not `interrupted`, it is `cut_by` the provider or the connection.
    cut_by: CutBy | None = None
    word_timings: tuple[WordTiming, ...] | None = None
    created_at: float = 0.0
    # The speaking rate used to place words in audio that stopped early (the message's own,
    # measured by `heard.speech_rate`, or the conservative default).
    ms_per_char: float = DEFAULT_MS_PER_CHAR


@dataclass(frozen=True, slots=True)
class ToolCallOutcome:
    """A function call whose arguments completed."""

    item_id: str
    call_id: str
    name: str
    arguments: str
    created_at: float = 0.0


@dataclass(frozen=True, slots=True)
class ResponseOutcome:
    response_id: str
    # Every output item id the provider announced, in output order (messages and calls).
    announced: Sequence[AnnouncedItem] = ()
    messages: Sequence[MessageOutcome] = ()
    tool_calls: Sequence[ToolCallOutcome] = ()


# --------------------------------------------------------------------------- outputs


@dataclass(frozen=True, slots=True)
class Truncate:
    """Cut the item's audio (and the transcript the provider derives from it) at `audio_end_ms`."""

    item_id: str
    audio_end_ms: int


@dataclass(frozen=True, slots=True)
class Delete:
    """Remove an item the caller never heard."""

    item_id: str


@dataclass(frozen=True, slots=True)
class ReplaceText:
    """Replace a text-only assistant item's content with the part that was delivered."""

    item_id: str
    text: str


ProviderOp: TypeAlias = Truncate | Delete | ReplaceText


@dataclass(frozen=True, slots=True)
class MessageVerdict:
    """Per-message classification, for events and metrics."""

    item_id: str
    playout: Playout
    audible: bool
    heard_text: str
    heard_ms: int


@dataclass(frozen=True, slots=True)
class LedgerResult:
    # Items to append to the local history, in output order.
    items: tuple[ConversationItem, ...] = ()
    ops: tuple[ProviderOp, ...] = ()
    verdicts: tuple[MessageVerdict, ...] = ()
    # True when any announced message did not play in full.
    interrupted: bool = False
    kept_call_ids: tuple[str, ...] = field(default=())


# --------------------------------------------------------------------------- the ledger


def heard_ms(outcome: MessageOutcome) -> int:
    """Whole milliseconds the caller heard: floor(min(played, received)), never negative."""
    value = min(outcome.played_ms, outcome.received_ms)
    if not math.isfinite(value) or value <= 0:
        return 0
    return math.floor(value)


def _heard_text(outcome: MessageOutcome, ms: float) -> str:
    return heard_prefix(
        outcome.generated_text,
        ms,
        outcome.received_ms,
        word_timings=outcome.word_timings,
        audio_complete=outcome.audio_complete,
        ms_per_char=outcome.ms_per_char,
    )


def _settle_audio_message(
    response_id: str, outcome: MessageOutcome
) -> tuple[MessageItem | None, ProviderOp | None, MessageVerdict]:
    ms = heard_ms(outcome)
    heard_all = outcome.playout == "full" or (
        outcome.playout == "partial"
        and outcome.audio_complete
        and ms >= math.floor(outcome.received_ms)
    )
    if heard_all and ms >= 1:
        # Everything received was played. If the provider stopped the item early (server-side
        # cancel, disconnect) the transcript may still hold words past the audio: keep only
        # those whose audio exists, and truncate the provider item at the audio it holds so it
        # drops that look-ahead transcript too (otherwise the model "remembers" unsaid words).
        # A completed item that played to the end needs nothing (P3, P8).
        text = outcome.generated_text
        op: ProviderOp | None = None
        cut_by = None if outcome.audio_complete else outcome.cut_by
        if not outcome.audio_complete:
            text = _heard_text(outcome, min(outcome.played_ms, outcome.received_ms))
            op = Truncate(outcome.item_id, ms)
        item = MessageItem(
            id=outcome.item_id,
            role="assistant",
            text=text,
            # The caller heard all the audio there is; only a cut by the caller (a cancel on
            # barge-in that happened to land at the end) is an interruption.
            interrupted=not outcome.audio_complete and cut_by is None,
            cut_by=cut_by,
            played_ms=min(outcome.played_ms, outcome.received_ms),
            generated_ms=outcome.received_ms,
            generated_text=outcome.generated_text,
            response_id=response_id,
            created_at=outcome.created_at,
        )
        verdict = MessageVerdict(outcome.item_id, "full", True, item.text, ms)
        return item, op, verdict
    if outcome.playout == "partial" and ms >= 1:
        text = _heard_text(outcome, ms)
        item = MessageItem(
            id=outcome.item_id,
            role="assistant",
            text=text,
            interrupted=True,
            played_ms=float(ms),
            generated_ms=outcome.received_ms,
            generated_text=outcome.generated_text,
            response_id=response_id,
            created_at=outcome.created_at,
        )
        verdict = MessageVerdict(outcome.item_id, "partial", True, text, ms)
        return item, Truncate(outcome.item_id, ms), verdict
    # skipped, partial below 1 ms, or "full" with no audio at all: never audible.
    verdict = MessageVerdict(outcome.item_id, "skipped", False, "", 0)
    return None, Delete(outcome.item_id), verdict


def _settle_text_message(
    response_id: str, outcome: MessageOutcome
) -> tuple[MessageItem | None, ProviderOp | None, MessageVerdict]:
    text = outcome.generated_text
    voiced = outcome.received_ms > 0
    if outcome.playout == "full" and text.strip():
        item = MessageItem(
            id=outcome.item_id,
            role="assistant",
            text=text,
            played_ms=min(outcome.played_ms, outcome.received_ms) if voiced else None,
            generated_ms=outcome.received_ms if voiced else None,
            generated_text=text,
            response_id=response_id,
            created_at=outcome.created_at,
        )
        return item, None, MessageVerdict(outcome.item_id, "full", True, text, heard_ms(outcome))
    if outcome.playout == "partial":
        ms = heard_ms(outcome)
        heard = _heard_text(outcome, ms) if voiced else ""
        if heard:
            item = MessageItem(
                id=outcome.item_id,
                role="assistant",
                text=heard,
                interrupted=True,
                played_ms=float(ms),
                generated_ms=outcome.received_ms,
                generated_text=text,
                response_id=response_id,
                created_at=outcome.created_at,
            )
            verdict = MessageVerdict(outcome.item_id, "partial", True, heard, ms)
            return item, ReplaceText(outcome.item_id, heard), verdict
    return None, Delete(outcome.item_id), MessageVerdict(outcome.item_id, "skipped", False, "", 0)


def _settle_order(outcome: ResponseOutcome) -> list[AnnouncedItem]:
    """The provider's announcement order, plus items the runtime saw that it lacks.

    Defensive: an item we saw but the announcement list misses is still settled (trust what
    we saw), after the announced ones, messages before tool calls.
    """
    order: list[AnnouncedItem] = list(outcome.announced)
    seen = {a.item_id for a in order}
    for m in outcome.messages:
        if m.item_id not in seen:
            order.append(AnnouncedItem(m.item_id, "message"))
            seen.add(m.item_id)
    for c in outcome.tool_calls:
        if c.item_id not in seen:
            order.append(AnnouncedItem(c.item_id, "function_call"))
            seen.add(c.item_id)
    return order


def _call_item(response_id: str, call: ToolCallOutcome) -> FunctionCallItem:
    """A tool call is kept whole: its arguments arrived complete, audibility does not apply."""
    return FunctionCallItem(
        id=call.item_id,
        call_id=call.call_id,
        name=call.name,
        arguments=call.arguments,
        response_id=response_id,
        created_at=call.created_at,
    )


def settle_response(outcome: ResponseOutcome) -> LedgerResult:
    """Turn one response's playout outcome into history items and provider operations."""
    messages = {m.item_id: m for m in outcome.messages}
    calls = {c.item_id: c for c in outcome.tool_calls}
    order = _settle_order(outcome)
    items: list[ConversationItem] = []
    ops: list[ProviderOp] = []
    verdicts: list[MessageVerdict] = []
    kept_calls: list[str] = []
    interrupted = False
    for announced in order:
        if announced.kind == "function_call" or announced.item_id in calls:
            call = calls.get(announced.item_id)
            if call is None:
                ops.append(Delete(announced.item_id))
                continue
            items.append(_call_item(outcome.response_id, call))
            kept_calls.append(call.call_id)
            continue
        message = messages.get(announced.item_id)
        if message is None:
            # Announced, never pulled: the caller cannot have heard it.
            ops.append(Delete(announced.item_id))
            verdicts.append(MessageVerdict(announced.item_id, "skipped", False, "", 0))
            interrupted = True
            continue
        settle = _settle_audio_message if message.has_audio else _settle_text_message
        item, op, verdict = settle(outcome.response_id, message)
        if item is not None:
            items.append(item)
        if op is not None:
            ops.append(op)
        verdicts.append(verdict)
        if message.playout != "full":
            interrupted = True
    return LedgerResult(
        items=tuple(items),
        ops=tuple(ops),
        verdicts=tuple(verdicts),
        interrupted=interrupted,
        kept_call_ids=tuple(kept_calls),
    )
