"""The CLI's live transcript is bounded however long the call (issue #14, per-call bound).

`vocalis run`, `console`, `demo` and every call of `vocalis serve` fed a `LiveTranscript`
that kept every caller, agent, tool and latency line (and an id table entry for each) for
the whole call — also with `--quiet`, where nothing is shown. A peer decides how many turns
a call has: the transcript now keeps its most recent `keep` lines.
"""

from __future__ import annotations

import io
import tracemalloc

from rich.console import Console

from vocalis.app.reports.live_view import LiveTranscript, LiveView


def one_turn(model: LiveTranscript, n: int) -> None:
    model.user_said(f"u{n}", "hello there", final=True)
    model.tool_started(f"c{n}", "lookup", "{}")
    model.tool_finished(f"c{n}", "ok")
    model.agent_text(f"a{n}", "sure, ")
    model.agent_message_ended(
        f"a{n}", interrupted=False, played_ms=900.0, heard_text="sure, here it is"
    )
    model.turn_latency(420.0)


def test_a_long_call_keeps_the_most_recent_lines_only() -> None:
    model = LiveTranscript(keep=40)
    for n in range(3000):
        one_turn(model, n)
    assert len(model.lines) == 40
    assert model.dropped == 3000 * 4 - 40  # four lines a turn
    assert [line.item_id for line in model.agent_lines()][-1] == "a2999"


def test_a_late_update_of_a_dropped_line_adds_no_line() -> None:
    model = LiveTranscript(keep=10)
    for n in range(20):
        one_turn(model, n)
    lines = list(model.lines)
    # Both ends of a message report it (in either order): the second one came late.
    model.agent_message_ended("a16", interrupted=True, played_ms=10.0, heard_text="su")
    model.agent_message_generated("a16", "sure, here it is")
    model.user_said("u16", "hello there again", final=True)
    model.tool_finished("c16", "late")
    assert model.lines == lines


def test_memory_stays_flat_as_turns_go_on() -> None:
    """Traced memory of the transcript after 1,000 more turns (unbounded: ~1 MB more)."""
    model = LiveTranscript(keep=100)
    view = LiveView(model, Console(file=io.StringIO(), quiet=True))  # `--quiet`, log mode
    tracemalloc.start()
    try:
        with view:
            for n in range(1000):
                one_turn(model, n)
                view.refresh()
            before, _ = tracemalloc.get_traced_memory()
            for n in range(1000, 2000):
                one_turn(model, n)
                view.refresh()
            after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert after - before < 20_000, after - before


def test_the_view_says_how_many_lines_it_no_longer_has() -> None:
    out = io.StringIO()
    model = LiveTranscript(keep=10)
    console = Console(file=out, force_terminal=True, width=120)
    with LiveView(model, console):
        for n in range(10):
            one_turn(model, n)
    text = out.getvalue()
    assert "30 earlier lines not kept" in text
