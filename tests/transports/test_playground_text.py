"""The playground without a microphone, in real headless Chromium (mic permission denied):
a typed call works — with the agent's voice (the page falls back to text input) and as a
text-only call (no audio at all) — against the embedded sim-server through `vocalis serve`'s
own call handler, so the page also shows the agent, its tool calls and their results."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from vocalis.app.conversation import api_root
from vocalis.app.endpoint import Endpoint
from vocalis.app.serve_run import CallHandler
from vocalis.providers.openai import OpenAIRealtimeModel
from vocalis.runtime.agent import Agent
from vocalis.runtime.tools import function_tool
from vocalis.sim.server import SimServer
from vocalis.transports.playground import serve_playground

pytestmark = pytest.mark.browser


@function_tool
def get_weather(city: str) -> dict[str, object]:
    """Weather for a city.

    Args:
        city: The city.
    """
    return {"city": city, "sky": "sunny"}


TOKEN = "test-token-0123456789"
AGENT = Agent("You answer weather questions.", tools=[get_weather], name="weather")
SCENARIO = {
    "responses": [
        {"items": [{"call": "get_weather", "arguments": {"city": "Oslo"}}]},
        {"say": "It is {result[sky]} in Oslo."},
    ]
}


@pytest.fixture
async def page_url(tmp_path: Path) -> AsyncIterator[str]:
    """`vocalis serve --playground` pieces: the sim, the real client, the CLI's CallHandler."""
    async with SimServer(scenario=SCENARIO, pace=4.0) as sim:
        model = OpenAIRealtimeModel(api_key="sim-local", base_url=api_root(sim.url))
        endpoint = Endpoint("url", sim.url, "gpt-realtime", "sim-local")
        console = Console(file=(tmp_path / "console.txt").open("w"), highlight=False)
        handler = CallHandler(AGENT, model, endpoint, console, out=None)
        routes = [handler.timelines.route(TOKEN)]  # as `vocalis serve` mounts it
        async with await serve_playground(
            handler, port=0, token=TOKEN, extra_routes=routes
        ) as served:
            yield served.url


@pytest.fixture
async def page(page_url: str, chromium: str) -> AsyncIterator[Any]:
    from playwright import async_api as playwright_api

    async with playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=chromium,
            headless=True,
            args=[
                # A (fake) microphone exists, but the page is not allowed to use it.
                "--use-fake-device-for-media-stream",
                "--autoplay-policy=no-user-gesture-required",
                "--no-sandbox",
                "--disable-gpu",
            ],
        )
        try:
            # No permissions granted and no fake-UI flag: getUserMedia is refused.
            context = await browser.new_context(permissions=[])
            tab = await context.new_page()
            errors: list[str] = []
            tab.on("pageerror", lambda exc: errors.append(str(exc)))
            await tab.goto(page_url)
            yield tab
            assert errors == []
        finally:
            await browser.close()


async def _ask(page: Any) -> dict[str, Any]:
    await page.fill("#text", "Weather in Oslo?")
    await page.click("#sendbtn")
    await page.wait_for_selector(".msg.tool[data-error='0']", timeout=20_000)
    await page.wait_for_function(
        "() => [...document.querySelectorAll('.msg.agent .text')]"
        ".some(e => e.textContent.includes('sunny in Oslo'))",
        timeout=20_000,
    )
    result: dict[str, Any] = await page.evaluate(
        """() => ({
            info: document.querySelector('#agentinfo').textContent,
            tool: document.querySelector('.msg.tool .text').textContent,
            toolResult: document.querySelector('.msg.tool .label').textContent,
            banner: document.querySelector('#banner').textContent,
            mic: document.body.dataset.mic || null,
            audio: document.body.dataset.audio,
        })"""
    )
    return result


async def test_mic_denied_falls_back_to_typing_with_the_agents_voice(page: Any) -> None:
    await page.click("#start")
    await page.wait_for_selector("body[data-call=ready]", timeout=15_000)
    seen = await _ask(page)
    assert seen["mic"] == "denied" and seen["audio"] == "ready"
    assert "Microphone unavailable (permission denied)" in seen["banner"]
    assert seen["info"] == "· weather · gpt-realtime · get_weather"
    assert seen["tool"] == '⚙ get_weather({"city": "Oslo"})'
    assert seen["toolResult"].startswith('→ {"city": "Oslo", "sky": "sunny"} (')
    # Spoken (the page played it): the verdict says so.
    await page.wait_for_selector(".msg.agent[data-verdict='full']", timeout=20_000)


async def test_text_only_call_needs_no_microphone_and_no_audio(page: Any) -> None:
    await page.check("#textonly")
    await page.click("#start")
    await page.wait_for_selector("body[data-call=ready]", timeout=15_000)
    seen = await _ask(page)
    assert seen["audio"] == "off" and seen["mic"] is None and seen["banner"] == ""
    # The call's timeline, linked from the page, behind the same token.
    href = await page.get_attribute("#timeline", "href")
    assert href is not None and href.startswith("/timeline/1?token=")
    # The page shows text as it streams; the call's record (and so its timeline) has the
    # message once its response settled, which the text-only page does not show: wait for it.
    # A synchronous request: Playwright treats a predicate's returned Promise as truthy, so an
    # async `fetch` predicate ends the wait at its first poll, whatever the page said.
    await page.wait_for_function(
        """(href) => {
            const request = new XMLHttpRequest();
            request.open("GET", href, false);
            request.send();
            return request.responseText.includes("sunny in Oslo");
        }""",
        arg=href,
        polling=100,
        timeout=20_000,
    )
    timeline = await page.context.new_page()
    await timeline.goto(page.url.split("/?")[0] + href)
    assert "sunny in Oslo" in await timeline.content()
    refused = await timeline.goto(page.url.split("/?")[0] + "/timeline/1")
    assert refused is not None and refused.status == 403
    labels = await page.eval_on_selector_all(
        ".msg.agent",
        "els => els.map(e => [e.dataset.verdict || null, e.querySelector('.label').textContent])",
    )
    assert labels == [[None, "text"]]  # nothing played: no verdict, shown as text
    await page.click("#stop")
    await page.wait_for_selector("body[data-closed='1']", timeout=5_000)


async def test_ready_fields_are_validated() -> None:
    from vocalis.transports.playground import PlaygroundProtocolError, PlaygroundTransport
    from vocalis.utils.clock import MonotonicClock

    transport = PlaygroundTransport(MonotonicClock())
    assert transport.audio_out is transport.sink
    transport.handle_text('{"type":"ready","output":"text","metadata":{"customer":"42"}}')
    assert transport.ready.is_set() and transport.audio_out is None
    assert transport.metadata == {"customer": "42"}
    for bad in (
        '{"type":"ready","output":"video"}',
        '{"type":"ready","metadata":{"n":1}}',
        '{"type":"ready","metadata":["a"]}',
        '{"type":"ready","metadata":{"k":"' + "v" * 300 + '"}}',
    ):
        with pytest.raises(PlaygroundProtocolError):
            PlaygroundTransport(MonotonicClock()).handle_text(bad)
