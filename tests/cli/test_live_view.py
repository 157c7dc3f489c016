"""The live transcript model and its rendering (no terminal needed)."""

from __future__ import annotations

import io

from rich.console import Console

from vocalis.app.reports.live_view import LiveTranscript, LiveView, Verdict, render, render_line


def text_of(model: LiveTranscript) -> str:
    console = Console(file=io.StringIO(), width=200, force_terminal=False)
    console.print(render(model))
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(out, str)
    return out


def conversation() -> LiveTranscript:
    model = LiveTranscript(title="t")
    model.user_said("u1", "Weather in Paris?")
    model.agent_state("speaking")
    model.agent_text("a1", "Let me ")
    model.agent_text("a1", "check.")
    model.tool_started("c1", "get_weather", '{"city": "Paris"}')
    model.agent_message_ended("a1", interrupted=False, played_ms=900.0, heard_text="Let me check.")
    model.tool_finished("c1", '{"sky": "sunny"}')
    model.turn_latency(512.4)
    model.agent_message_ended(
        "a2",
        interrupted=True,
        played_ms=1080.0,
        heard_text="The weekend looks",
        generated_text="The weekend looks mixed.",
    )
    # The transport's verdict may arrive after the history item: it must not erase the rest.
    model.agent_message_ended(
        "a2", interrupted=True, played_ms=1080.0, heard_text="The weekend looks"
    )
    model.agent_message_ended("a3", interrupted=True, played_ms=0.0, heard_text="")
    return model


def test_each_agent_message_gets_its_verdict() -> None:
    model = conversation()
    verdicts = {line.item_id: (line.verdict, line.label()) for line in model.agent_lines()}
    assert verdicts == {
        "a1": (Verdict.PLAYED, "played (900 ms)"),
        "a2": (Verdict.INTERRUPTED, "interrupted at 1080 ms"),
        "a3": (Verdict.NEVER_PLAYED, "never played"),
    }


def test_rendered_view_shows_verdicts_tools_latency_and_state() -> None:
    out = text_of(conversation())
    assert "caller  Weather in Paris?" in out
    assert "agent   Let me check.  [played (900 ms)]" in out
    assert 'get_weather({"city": "Paris"})  → {"sky": "sunny"}' in out
    assert "turn 1: 512 ms to first played audio" in out
    assert "[interrupted at 1080 ms]  unheard: mixed." in out
    assert "[never played]" in out
    assert "agent: speaking" in out


def test_log_mode_prints_each_finished_line_once_in_order() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, width=200, force_terminal=False)
    model = LiveTranscript()
    with LiveView(model, console) as view:
        assert not view.interactive
        model.user_said("u1", "", final=False)  # transcript pending: holds later lines
        model.agent_message_ended("a1", interrupted=False, played_ms=10.0, heard_text="Hi.")
        view.refresh()
        assert buffer.getvalue() == ""
        model.user_said("u1", "Hello", final=True)
        view.refresh()
        view.refresh()
    lines = buffer.getvalue().splitlines()
    assert [line.split()[0] for line in lines] == ["caller", "agent"]
    assert len(lines) == 2


def test_unfinished_lines_are_printed_at_the_end() -> None:
    buffer = io.StringIO()
    model = LiveTranscript()
    with LiveView(model, Console(file=buffer, width=200, force_terminal=False)) as view:
        model.tool_started("c1", "slow_tool", "{}")
        view.refresh()
    assert "slow_tool({})  running…" in buffer.getvalue()
    assert render_line(model.lines[0]).plain.startswith("tool")


def test_never_played_message_shows_its_text_once_the_metrics_bring_it() -> None:
    """The skipped segment's verdict comes first; its text (from the turn metrics) right after.

    In log mode the line waits for the text, so it is printed once, complete.
    """
    buffer = io.StringIO()
    model = LiveTranscript()
    with LiveView(model, Console(file=buffer, width=200, force_terminal=False)) as view:
        model.agent_message_ended("a1", interrupted=True, played_ms=0.0, heard_text="")
        view.refresh()
        assert buffer.getvalue() == ""
        model.agent_message_generated("a1", "Anything else?")
        model.agent_message_generated("a1", "ignored: the first text wins")
        view.refresh()
    [line] = buffer.getvalue().splitlines()
    assert line.split() == ["agent", "[never", "played]", "Anything", "else?"]
    # Unknown ids (never pulled, so never shown) are ignored rather than invented.
    model.agent_message_generated("zz", "nothing")
    assert [a.item_id for a in model.agent_lines()] == ["a1"]
