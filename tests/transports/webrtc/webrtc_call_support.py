"""A call from headless Chromium over WebRTC to an `AgentSession` on the embedded sim-server,
with a spoken barge-in; shared by the plain and the packet-loss browser tests."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from browser_support import STORE_ANSWER, launched_chromium, store_scenario, truncates, until
from vocalis.transports.base import Transport
from vocalis.transports.webrtc import WebRTCTransport, serve_webrtc

from .lossy_relay import LossyRelay

if TYPE_CHECKING:
    from playwright.async_api import Page, Route

SCENARIO = store_scenario("webrtc_e2e")


async def through_relay(page: Page, relay: LossyRelay) -> None:
    """Route the page's media through `relay`: its offer's answer names only the relay."""

    async def reroute(route: Route) -> None:
        offer = route.request.post_data_json
        assert isinstance(offer, dict), "the page's offer is a JSON object"
        offer["sdp"] = relay.hide_browser(offer["sdp"])
        response = await route.fetch(post_data=json.dumps(offer))
        answer = await response.json()
        answer["sdp"] = relay.rewrite(answer["sdp"])
        await route.fulfill(response=response, json=answer)

    await page.route("**/webrtc/offer*", reroute)


async def sim_call(chromium_mic: Path, relay: LossyRelay | None = None) -> dict[str, Any]:
    """A call from Chromium over WebRTC to an `AgentSession` on the embedded sim-server; the
    caller barges in during the second message. Returns what the page, the server and the
    provider saw. With a `relay`, the media passes through it (the packet-loss test)."""
    from vocalis.app.conversation import api_root
    from vocalis.providers.openai import OpenAIRealtimeModel
    from vocalis.runtime.agent import Agent
    from vocalis.runtime.session import AgentSession
    from vocalis.sim.server import SimServer
    from vocalis.utils.clock import MonotonicClock

    histories: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    transports: list[WebRTCTransport] = []
    async with SimServer(scenario=SCENARIO, pace=2.0) as sim:
        model = OpenAIRealtimeModel(
            "gpt-realtime", api_key="sim-local", base_url=api_root(sim.url), reconnect=False
        )

        async def on_call(transport: Transport) -> None:
            assert isinstance(transport, WebRTCTransport)
            transports.append(transport)
            session = AgentSession(model, transport, clock=MonotonicClock())
            await session.start(Agent(instructions="You answer questions about the store."))
            try:
                await transport.wait_closed()
            finally:
                await histories.put(session.history_json())
                await session.aclose()

        served = await serve_webrtc(on_call, port=0)
        async with served, launched_chromium(chromium_mic) as browser:
            page = await browser.new_page()
            if relay is not None:
                await through_relay(page, relay)
            await page.goto(served.url)
            await page.click("#start")
            await page.wait_for_selector("body[data-audio=ready]", timeout=20_000)
            await page.wait_for_selector(
                ".msg.agent[data-verdict] ~ .msg.agent[data-verdict]", timeout=60_000
            )
            async with asyncio.timeout(10):  # the truncate follows the history's update
                await until(lambda: bool(truncates(sim)))
            bubbles = await page.eval_on_selector_all(
                ".msg.agent",
                """els => els.map(e => ({id: e.dataset.id, verdict: e.dataset.verdict,
                    text: e.querySelector('.text').textContent,
                    played: e.dataset.playedMs}))""",
            )
            state = await page.evaluate("() => window.vocalisWebRTC.state")
            stats = await page.evaluate(
                """async () => { let s = null;
                    (await window.vocalisWebRTC.receiver.getStats()).forEach((r) => {
                      if (r.type === "inbound-rtp") s = r; });
                    return s; }"""
            )
            await page.click("#stop")
            history = await asyncio.wait_for(histories.get(), 15)
        sent_truncates = truncates(sim)
    return {
        "bubbles": bubbles,
        "state": state,
        "stats": stats,
        "history": history,
        "truncates": sent_truncates,
        "sink": transports[0].sink,
    }


def check_heard_contract(call: dict[str, Any]) -> float:
    """The done-criterion of the call; returns the page's reported stop position (ms)."""
    first, second = call["bubbles"][0], call["bubbles"][1]
    assert first["verdict"] == "full" and first["text"] == "Sure, one moment."
    assert second["verdict"] == "partial", call["bubbles"]
    assert (
        second["text"]
        and STORE_ANSWER.startswith(second["text"])
        and second["text"] != STORE_ANSWER
    )
    items = {item["id"]: item for item in call["history"]["items"]}
    heard = items[second["id"]]
    assert heard["interrupted"] is True
    assert heard["text"] == second["text"]  # page transcript == server history
    assert items[first["id"]]["text"] == first["text"]
    # The position the page reported when it muted, from the second message's first sample.
    state = call["state"]
    n = next(int(k) for k, v in state["ids"].items() if v == second["id"])
    page_ms = float((state["clears"][-1]["rtp"] - state["starts"][str(n)]) % 2**32) / 48
    assert abs(heard["played_ms"] - page_ms) <= 1
    [truncate] = call["truncates"]
    assert truncate["item_id"] == second["id"]
    assert abs(truncate["audio_end_ms"] - page_ms) <= 60, (truncate, page_ms)
    return page_ms
