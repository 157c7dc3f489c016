"""timeline.html: well-formed, self-contained, every message and tool call present."""

from __future__ import annotations

from html.parser import HTMLParser

from cli_support import parse_timeline
from timeline_sample import sample_timeline

from vocalis.app.reports.timeline import render_html


def test_every_message_has_a_card_with_its_status() -> None:
    page = parse_timeline(render_html(sample_timeline()))
    assert page.cards == {
        "u1": "text",
        "a1": "played",
        "a2": "played",
        "u2": "text",
        "a3": "interrupted",
        "a4": "never played",
        "u3": "text",
    }
    assert page.tool_cards == ["call_1"]


def test_cards_follow_the_conversation_order_with_tools_in_place() -> None:
    page = parse_timeline(render_html(sample_timeline()))
    assert page.order == ["u1", "a1", "call_1", "a2", "u2", "a3", "a4", "u3"]


def test_interrupted_message_shows_heard_and_struck_unheard_text() -> None:
    html = render_html(sample_timeline())
    assert "interrupted at 1100 ms" in html
    assert '<span class="unheard">cloudy with rain in the afternoon.</span>' in html
    assert "never played" in html
    assert "cut 1100 ms" in html  # the truncation marker on the time axis


def test_never_played_message_has_its_own_lane_and_no_cut_marker() -> None:
    """Drawn where it would have played, it must not cover the answer that played there, and
    nothing of it was cut: one lane of its own, its text in it, no "cut 0 ms"."""
    html = render_html(sample_timeline())
    assert ">unheard</text>" in html
    assert "never played: Anything else?</text>" in html
    assert html.count(">cut ") == 1 and "cut 0 ms" not in html
    # The card shows what the model had generated, struck through as never heard.
    assert '<span class="unheard">Anything else?</span>' in html
    assert "due at 13.10 s" in html  # it has no time it played, only the time it was due
    timeline = sample_timeline()
    timeline.messages = [m for m in timeline.messages if m.item_id != "a4"]
    assert ">unheard</text>" not in render_html(timeline)


def test_self_contained_and_escaped() -> None:
    html = render_html(sample_timeline())
    page = parse_timeline(html)
    assert page.external == [], "no external resources"
    assert page.scripts == 0
    assert "<conversation>" not in html and "sample &lt;conversation&gt; &amp; co" in html
    assert page.unclosed == [], "every opened element is closed"


def test_latency_per_turn_is_shown() -> None:
    html = render_html(sample_timeline())
    assert "turn 1: 600 ms to first audio" in html
    assert "turn 2: 600 ms to first audio" in html


def test_page_without_positions_still_lists_everything() -> None:
    timeline = sample_timeline()
    for message in timeline.messages:
        message.start_ms = None
    timeline.tools[0].start_ms = None
    timeline.states.clear()
    page = parse_timeline(render_html(timeline))
    assert len(page.cards) == 7


def test_parser_sees_structure() -> None:
    # Guard against a parser that sees nothing (the tests above would pass vacuously).
    class Count(HTMLParser):
        sections = 0

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            Count.sections += tag == "section"

    Count().feed(render_html(sample_timeline()))
    assert Count.sections == 8
