"""Property tests of the heard ledger.

A random response (1-4 messages of random length, optional complete or broken tool calls) is
"played" back to back on an imaginary clock and interrupted at a random time; the playout
results a correct transport would report go into `settle_response`. Whatever the draw, the
heard contract must hold: history text is the heard prefix, every unheard item is deleted,
no truncate at 0, no truncate beyond the received audio, nothing done to fully played
complete items.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from vocalis.conversation.heard import WordTiming, heard_prefix, word_spans
from vocalis.conversation.items import FunctionCallItem, MessageItem
from vocalis.conversation.ledger import (
    AnnouncedItem,
    Delete,
    MessageOutcome,
    ProviderOp,
    ReplaceText,
    ResponseOutcome,
    ToolCallOutcome,
    Truncate,
    settle_response,
)

WORDS = st.sampled_from(
    ["one", "two,", "three.", "let", "me", "check", "that", "for", "you", "Okay!", "a", "weather"]
)


@dataclass
class Drawn:
    outcome: ResponseOutcome
    # item_id -> the message as scripted (pulled or not)
    scripted: dict[str, tuple[str, float, tuple[WordTiming, ...] | None]]
    pulled: set[str]
    complete_calls: set[str]
    broken_calls: set[str]


def _timings(text: str, duration: float) -> tuple[WordTiming, ...]:
    spans = word_spans(text)
    if not spans:
        return ()
    per = duration / len(spans)
    return tuple(WordTiming(text[s:e], i * per, (i + 1) * per) for i, (s, e) in enumerate(spans))


@st.composite
def played_responses(draw: st.DrawFn) -> Drawn:
    n_messages = draw(st.integers(1, 4))
    n_calls = draw(st.integers(0, 2))
    kinds = ["message"] * n_messages + ["function_call"] * n_calls
    kinds = draw(st.permutations(kinds))
    announced: list[AnnouncedItem] = []
    scripted: dict[str, tuple[str, float, tuple[WordTiming, ...] | None]] = {}
    for index, kind in enumerate(kinds):
        item_id = f"item_{index}"
        announced.append(
            AnnouncedItem(item_id, "message" if kind == "message" else "function_call")
        )
        if kind == "message":
            text = " ".join(draw(st.lists(WORDS, min_size=0, max_size=12)))
            duration = draw(st.one_of(st.just(0.0), st.floats(1.0, 8000.0)))
            timed = draw(st.booleans())
            scripted[item_id] = (text, duration, _timings(text, duration) if timed else None)

    total = sum(d for _, d, _ in scripted.values())
    interrupt_at = draw(st.one_of(st.none(), st.floats(0.0, total + 500.0)))
    # The transport clock may lead the received audio (jitter buffer): S4.
    lead = draw(st.floats(0.0, 120.0))
    # Messages after the interruption may never have been pulled by the runtime.
    pull_after_interrupt = draw(st.booleans())
    audio_complete = draw(st.booleans())

    messages: list[MessageOutcome] = []
    pulled: set[str] = set()
    start = 0.0
    stopped = False
    for item in announced:
        if item.kind != "message":
            continue
        text, duration, timings = scripted[item.item_id]
        if stopped and not pull_after_interrupt:
            start += duration
            continue
        if interrupt_at is None or (interrupt_at >= start + duration and not stopped):
            complete = draw(st.booleans()) if interrupt_at is not None else True
            playout, played, received = "full", duration, duration
        elif not stopped and interrupt_at >= start:
            played = interrupt_at - start + lead
            playout, received, complete = "partial", duration, audio_complete
            stopped = True
        else:
            playout, played, received, complete = "skipped", 0.0, duration, True
            stopped = True
        messages.append(
            MessageOutcome(
                item_id=item.item_id,
                playout=playout,  # type: ignore[arg-type]
                played_ms=played,
                received_ms=received,
                generated_text=text,
                audio_complete=complete,
                word_timings=timings,
            )
        )
        pulled.add(item.item_id)
        start += duration

    calls: list[ToolCallOutcome] = []
    complete_calls: set[str] = set()
    broken_calls: set[str] = set()
    for item in announced:
        if item.kind == "function_call":
            if draw(st.booleans()):
                calls.append(ToolCallOutcome(item.item_id, f"call_{item.item_id}", "f", "{}"))
                complete_calls.add(item.item_id)
            else:
                broken_calls.add(item.item_id)
    outcome = ResponseOutcome("resp_1", tuple(announced), tuple(messages), tuple(calls))
    return Drawn(outcome, scripted, pulled, complete_calls, broken_calls)


def _is_word_prefix(prefix: str, text: str) -> bool:
    if not text.startswith(prefix):
        return False
    if prefix == "":
        return True
    k = len(prefix)
    return not prefix[-1].isspace() and (k == len(text) or text[k].isspace())


@settings(max_examples=600, deadline=None)
@given(played_responses())
def test_ledger_keeps_the_heard_contract(drawn: Drawn) -> None:
    result = settle_response(drawn.outcome)
    history = {item.id: item for item in result.items}
    ops_by_item: dict[str, list[ProviderOp]] = {}
    for op in result.ops:
        ops_by_item.setdefault(op.item_id, []).append(op)
    announced_ids = [a.item_id for a in drawn.outcome.announced]

    # Every operation targets an announced item; at most one operation per item.
    assert set(ops_by_item) <= set(announced_ids)
    assert all(len(v) == 1 for v in ops_by_item.values())
    # No item is both kept and deleted.
    for item_id, ops in ops_by_item.items():
        if isinstance(ops[0], Delete):
            assert item_id not in history
    # History preserves output order.
    assert [i for i in announced_ids if i in history] == [item.id for item in result.items]

    outcomes = {m.item_id: m for m in drawn.outcome.messages}
    for item_id, (text, _duration, timings) in drawn.scripted.items():
        outcome = outcomes.get(item_id)
        ops = ops_by_item.get(item_id, [])
        if outcome is None:
            # Announced but never pulled: deleted, absent.
            assert ops == [Delete(item_id)]
            assert item_id not in history
            continue
        heard = math.floor(max(0.0, min(outcome.played_ms, outcome.received_ms)))
        heard_all = outcome.playout == "full" or (
            outcome.playout == "partial"
            and outcome.audio_complete
            and heard >= math.floor(outcome.received_ms)
        )
        if heard_all and heard >= 1:
            item = history[item_id]
            assert isinstance(item, MessageItem)
            if outcome.audio_complete:
                assert ops == []
                assert item.text == text and not item.interrupted
            else:
                # Provider cut the audio: only words with audio are kept, flagged interrupted,
                # and the provider item is cut at its own audio so its look-ahead text goes too.
                assert ops == [Truncate(item_id, heard)]
                assert heard <= outcome.received_ms
                assert item.interrupted and _is_word_prefix(item.text, text)
        elif outcome.playout == "partial" and heard >= 1:
            assert ops == [Truncate(item_id, heard)]
            (op,) = ops
            assert isinstance(op, Truncate)
            assert 1 <= op.audio_end_ms <= outcome.received_ms
            assert op.audio_end_ms <= outcome.played_ms
            item = history[item_id]
            assert isinstance(item, MessageItem)
            assert item.interrupted and item.played_ms == heard
            assert _is_word_prefix(item.text, text)
            assert item.text == heard_prefix(
                text,
                heard,
                outcome.received_ms,
                word_timings=timings,
                audio_complete=outcome.audio_complete,
            )
            _assert_within_one_word(item.text, text, heard, outcome.received_ms, timings, outcome)
        else:
            # Never audible: deleted by id, never truncated at 0, not in history.
            assert ops == [Delete(item_id)]
            assert item_id not in history

    for item_id in drawn.complete_calls:
        item = history[item_id]
        assert isinstance(item, FunctionCallItem)
        assert ops_by_item.get(item_id) is None
    for item_id in drawn.broken_calls:
        assert item_id not in history
        assert ops_by_item[item_id] == [Delete(item_id)]
    assert set(result.kept_call_ids) == {f"call_{i}" for i in drawn.complete_calls}
    assert not any(isinstance(op, ReplaceText) for op in result.ops)
    assert not any(isinstance(op, Truncate) and op.audio_end_ms < 1 for op in result.ops)


def _assert_within_one_word(
    heard_text: str,
    text: str,
    heard_ms: float,
    received_ms: float,
    timings: tuple[WordTiming, ...] | None,
    outcome: MessageOutcome,
) -> None:
    """Independent check: the count of heard words is within one word of the truth."""
    count = len(word_spans(heard_text))
    if timings:
        finished = sum(1 for t in timings if t.end_ms <= heard_ms)
        started = sum(1 for t in timings if t.start_ms < heard_ms)
        assert finished <= count <= max(started, finished)
    elif outcome.audio_complete and text.strip():
        length = len(text.rstrip())
        fraction = heard_ms / received_ms
        truth = sum(1 for _, end in word_spans(text) if end / length <= fraction)
        assert abs(count - truth) <= 1
    else:
        # Incomplete audio: the estimate must never credit more than the proportional truth.
        length = len(text.rstrip()) or 1
        fraction = min(1.0, heard_ms / received_ms) if received_ms else 0.0
        upper = sum(1 for s, _ in word_spans(text) if s / length < fraction)
        assert count <= max(upper, 1)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(WORDS, min_size=0, max_size=15).map(" ".join),
    st.floats(1.0, 9000.0),
    st.floats(0.0, 9000.0),
    st.floats(0.0, 9000.0),
)
def test_heard_prefix_is_monotone_word_prefix(text: str, total: float, a: float, b: float) -> None:
    lo, hi = sorted((a, b))
    first = heard_prefix(text, lo, total)
    second = heard_prefix(text, hi, total)
    assert _is_word_prefix(first, text) and _is_word_prefix(second, text)
    assert second.startswith(first)
    assert heard_prefix(text, total, total) == text
    assert heard_prefix(text, 0.0, total) == ""
