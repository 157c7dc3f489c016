"""The demo's timeline.html rendered headless in Debian chromium: every message is on screen."""

from __future__ import annotations

import json
import os
import shutil

import pytest
from cli_support import CliRun

# The same browser as the playground tests (and `make chromium`).
CHROMIUM = os.environ.get("VOCALIS_CHROMIUM", "/usr/bin/chromium")

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def chromium() -> str:
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} missing: `make test` installs it (apt-get install chromium)")
    return CHROMIUM


def test_timeline_renders_every_message(demo_run: CliRun, chromium: str) -> None:
    from playwright.sync_api import sync_playwright

    assert demo_run.result.returncode == 0, demo_run.result.stderr
    page_path = demo_run.out / "timeline.html"
    items = json.loads((demo_run.out / "history.json").read_text())["items"]
    messages = [i for i in items if i["type"] == "message"]
    png = demo_run.out / "timeline.png"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(page_path.as_uri())
            page.screenshot(path=str(png), full_page=True)
            # Nothing fetched besides the page itself: it is self-contained.
            assert requests == [page_path.as_uri()]
            for message in messages:
                card = page.locator(f'section[data-item-id="{message["id"]}"]')
                assert card.count() == 1
                assert card.is_visible()
                box = card.bounding_box()
                assert box is not None and box["height"] > 20 and box["width"] > 300
                text = card.inner_text()
                assert message["text"] in text
            cut = [m for m in messages if m["interrupted"]]
            for message in cut:
                card = page.locator(f'section[data-item-id="{message["id"]}"]')
                assert "interrupted at" in card.inner_text()
                unheard = card.locator(".unheard")
                assert unheard.is_visible()
                assert unheard.evaluate("e => getComputedStyle(e).textDecorationLine") == (
                    "line-through"
                )
            # The never-played message (only in the metrics): its card with what the model
            # had generated, struck through, and its outline in the "unheard" lane.
            metrics = json.loads((demo_run.out / "history.json").read_text())["metrics"]
            never = [m for t in metrics for m in t["messages"] if m["playout"] == "skipped"]
            assert never, "the demo's third message of turn 2 should never play"
            for message in never:
                card = page.locator(f'section[data-item-id="{message["item_id"]}"]')
                assert card.is_visible() and "never played" in card.inner_text()
                unheard = card.locator(".unheard")
                assert unheard.inner_text() == message["generated_text"].strip()
                assert unheard.evaluate("e => getComputedStyle(e).textDecorationLine") == (
                    "line-through"
                )
                bar = page.locator(f'svg g[data-item-id="{message["item_id"]}"] rect')
                assert bar.count() == 1 and bar.first.is_visible()
            # Each agent message is drawn on the time axis too (generated vs heard bars).
            agent = [m for m in messages if m["role"] == "assistant"]
            for message in agent:
                bar = page.locator(f'svg g[data-item-id="{message["id"]}"] rect')
                assert bar.count() >= 1 and bar.first.is_visible()
        finally:
            browser.close()
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
