"""Helpers shared by the CLI tests: the repository root, subprocess results, timeline.html.

A uniquely named module (not `conftest`): several test folders have a conftest.py, and
`from conftest import ...` would pick whichever was imported first.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# No API key: an offline command must not need one (and must not reach a real provider).
NO_KEY_ENV = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}


def run_python(*args: str, stdin: str) -> subprocess.CompletedProcess[str]:
    """Run ``python *args`` from the repository root without an API key, typing ``stdin``:
    the one way the chat tests start a chat, so they all run it the same way."""
    return subprocess.run(
        [sys.executable, *args],
        input=stdin,
        cwd=REPO,
        env=NO_KEY_ENV,
        capture_output=True,
        text=True,
        timeout=60,
    )


@dataclass(frozen=True)
class CliRun:
    out: Path
    result: subprocess.CompletedProcess[str]


# Elements HTML allows without a closing tag.
_VOID = {"meta", "br", "img", "input", "link", "hr", "source", "wbr"}
# SVG shapes written self-closing (`<rect ... />`).
_SELF_CLOSING_OK = {"rect", "line", "circle", "path"}


@dataclass
class TimelinePage:
    cards: dict[str, str] = field(default_factory=dict)
    tool_cards: list[str] = field(default_factory=list)
    order: list[str] = field(default_factory=list)
    external: list[str] = field(default_factory=list)
    scripts: int = 0
    unclosed: list[str] = field(default_factory=list)


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.page = TimelinePage()
        self.stack: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "section" and a.get("data-item-id"):
            item_id = a["data-item-id"] or ""
            self.page.cards[item_id] = a.get("data-status") or ""
            self.page.order.append(item_id)
        if tag == "section" and a.get("data-call-id"):
            call_id = a["data-call-id"] or ""
            self.page.tool_cards.append(call_id)
            self.page.order.append(call_id)
        if tag == "script":
            self.page.scripts += 1
        for key in ("src", "href"):
            if a.get(key):
                self.page.external.append(a[key] or "")
        if tag not in _VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        for key in ("src", "href"):
            if a.get(key):
                self.page.external.append(a[key] or "")

    def handle_endtag(self, tag: str) -> None:
        if self.stack and self.stack[-1] == tag:
            self.stack.pop()
        else:
            self.page.unclosed.append(f"</{tag}> while open: {self.stack[-3:]}")


def parse_timeline(html: str) -> TimelinePage:
    parser = _Parser()
    parser.feed(html)
    parser.close()
    page = parser.page
    page.unclosed += parser.stack
    return page
