"""The playground in real headless Chromium: fake microphone from a WAV, real AudioWorklets.

`test_playground_scripted_barge_in` proves the page and the page-clocked sink with a scripted
call (two messages, barge-in during the second). `test_playground_against_sim_server` is the
full version: the embedded sim-server (OpenAI GA protocol) + `AgentSession` + the real OpenAI
client, with the caller's barge-in coming from the fake microphone through server VAD.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from browser_support import (
    STORE_ANSWER,
    barge_in_wav,
    launched_chromium,
    question_wav,
    store_scenario,
    truncates,
    until,
)
from vocalis.audio.espeak import synthesize
from vocalis.conversation.heard import heard_prefix
from vocalis.runtime.transcript import TranscriptSync
from vocalis.transports.base import PlayoutResult, PlayoutStatus
from vocalis.transports.playground import PlaygroundTransport, serve_playground
from vocalis.transports.playground.sink import PlaygroundAudioSink, PlaygroundSegment

if TYPE_CHECKING:
    from playwright.async_api import Browser

pytestmark = pytest.mark.browser


def frozen_over_reports(
    sink: PlaygroundAudioSink, seg: PlaygroundSegment, reports: int
) -> Callable[[], bool]:
    """A condition: `seg`'s position has not moved over the page's last `reports` reports."""
    since = (sink.reports, seg.played_ms)

    def check() -> bool:
        nonlocal since
        if seg.played_ms != since[1]:
            since = (sink.reports, seg.played_ms)
        return sink.reports - since[0] >= reports

    return check


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Browser]:
    async with launched_chromium(question_wav(tmp_path / "caller.wav")) as instance:
        yield instance


async def test_playground_scripted_barge_in(browser: Browser) -> None:
    first = synthesize("Hello! I am a scripted agent.")
    second = synthesize(
        "Here is a long second message that you will interrupt well before it ends, "
        "exactly the way impatient callers do on the phone."
    )
    outcome: asyncio.Future[tuple[PlayoutResult, PlayoutResult, str, str, int, str]] = (
        asyncio.get_running_loop().create_future()
    )

    async def on_call(transport: PlaygroundTransport) -> None:
        try:
            # 1. The caller speaks (Chromium's fake microphone plays the WAV).
            loud = 0
            async for frame in transport.audio_in.frames(24000):
                if int(np.abs(frame.samples.astype(np.int32)).max()) > 1500:
                    loud += frame.num_samples
                if loud >= 24000 * 0.3:
                    break
            text = transport.text_out
            text.user_transcript("caller_0", "", True)  # a turn the transcription could not read
            text.user_transcript("caller_1", "Hi, what are your opening hours?", True)
            text.agent_state("speaking")
            # 2. Two messages back to back, words released as they play.
            sink = transport.sink
            seg1 = sink.begin_segment("msg_1", 24000)
            seg2 = sink.begin_segment("msg_2", 24000)
            seg3 = sink.begin_segment("msg_3", 24000)  # queued behind 2: never played
            seg3.push(first.samples)
            seg3.end()
            syncs = []
            for seg, clip in ((seg1, first), (seg2, second)):
                sync = TranscriptSync(seg.id, text, transport.clock, interval=0.04)
                sync.add_text(clip.text)
                sync.text_complete = True
                sync.word_timings = clip.words
                for chunk in np.array_split(clip.samples, 9):
                    seg.push(chunk)
                    sync.audio_ms += chunk.shape[0] / 24
                seg.end()
                sync.audio_complete = True
                syncs.append((sync, asyncio.create_task(sync.follow(seg))))
            # 3. A false interruption: the page's player holds (positions frozen, reports go
            # on), then resumes from the same sample.
            await until(lambda: seg2.played_ms >= 400)
            sink.pause()
            async with asyncio.timeout(5):  # the pause reaches the worklet: positions freeze
                await until(frozen_over_reports(sink, seg2, 3))
                held, reports = seg2.played_ms, sink.reports
                await until(lambda: sink.reports >= reports + 3)  # reports go on while held
            assert seg2.played_ms == held
            sink.resume()
            # 4. Barge-in once ~1.2 s of the second message has been played by the page.
            await until(lambda: seg2.played_ms >= 1200)
            sink.clear()
            r1, r2 = await seg1.wait_for_playout(), await seg2.wait_for_playout()
            heard: list[str] = []
            # What the runtime does after playout: the verdict with the ledger's heard text.
            for (sync, follow), result, clip in ((syncs[0], r1, first), (syncs[1], r2, second)):
                await follow
                sync.finish(result)
                words = heard_prefix(
                    clip.text, result.played_ms, clip.duration_ms, word_timings=clip.words
                )
                text.agent_segment_ended(result.segment_id, result, words)
                heard.append(words)
            heard1, heard2 = heard
            r3 = await seg3.wait_for_playout()
            assert r3.status is PlayoutStatus.SKIPPED and r3.played_ms == 0
            text.agent_segment_ended("msg_3", r3, "")
            text.agent_state("listening")
            typed = await asyncio.wait_for(anext(transport.text_in()), 20)
            text.notice(f"you typed: {typed}")
            outcome.set_result((r1, r2, heard1, heard2, loud, typed))
        except BaseException as exc:
            if not outcome.done():
                outcome.set_exception(exc)
            raise
        await transport.wait_closed()

    endpoint = await serve_playground(on_call, port=0)
    async with endpoint:
        page = await browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(endpoint.url)
        await page.click("#start")
        await page.wait_for_selector("body[data-audio=ready]", timeout=15_000)
        await page.wait_for_selector('.msg.agent[data-id="msg_2"][data-verdict]', timeout=30_000)
        await page.fill("#text", "thanks")
        await page.click("#sendbtn")
        r1, r2, heard1, heard2, loud, typed = await asyncio.wait_for(outcome, 20)
        await page.wait_for_selector(".notice", timeout=5_000)

        assert loud >= 7200 and typed == "thanks"
        assert r1.status is PlayoutStatus.FULL and heard1 == first.text
        assert r2.status is PlayoutStatus.PARTIAL
        assert 1200 <= r2.played_ms < second.duration_ms
        assert heard2 and second.text.startswith(heard2) and heard2 != second.text

        bubbles = await page.eval_on_selector_all(
            ".msg.agent",
            """els => els.map(e => ({id: e.dataset.id, verdict: e.dataset.verdict,
                text: e.querySelector('.text').textContent,
                label: e.querySelector('.label').textContent,
                local: e.dataset.localPlayedMs}))""",
        )
        by_id = {b["id"]: b for b in bubbles}
        assert by_id["msg_1"]["verdict"] == "full" and by_id["msg_1"]["label"] == "played"
        assert by_id["msg_1"]["text"] == heard1
        # The page's transcript and the server agree on what was heard, and on where the
        # page's own player stopped (the server's played_ms comes from it).
        assert by_id["msg_2"]["text"] == heard2
        assert by_id["msg_2"]["label"] == f"interrupted at {round(r2.played_ms)} ms"
        assert abs(int(by_id["msg_2"]["local"]) - r2.played_ms) <= 1
        assert by_id["msg_3"]["verdict"] == "skipped"
        assert by_id["msg_3"]["label"] == "never played" and by_id["msg_3"]["text"] == ""
        users = await page.eval_on_selector_all(
            ".msg.user[data-id]",
            """els => els.map(e => [e.dataset.id, e.querySelector('.text').textContent,
                e.querySelector('.label').textContent])""",
        )
        assert users == [
            ["caller_0", "…", "not transcribed"],
            ["caller_1", "Hi, what are your opening hours?", ""],
        ]
        assert await page.get_attribute("#state", "data-state") == "listening"
        assert errors == []
        await page.click("#stop")
        await page.wait_for_selector("body[data-closed='1']", timeout=5_000)


@pytest.fixture
def barge_in_mic(tmp_path: Path) -> Path:
    return barge_in_wav(tmp_path / "barge_in.wav")


async def test_playground_against_sim_server(barge_in_mic: Path) -> None:
    """Issue 5's done-criterion: the caller speaks, the agent answers with two messages, the
    caller barges in during the second; the page's transcript and the server's history agree
    on the heard text, and the provider received the matching truncate."""
    from vocalis.app.conversation import api_root
    from vocalis.providers.openai import OpenAIRealtimeModel
    from vocalis.runtime.agent import Agent
    from vocalis.runtime.session import AgentSession
    from vocalis.sim.server import SimServer
    from vocalis.utils.clock import MonotonicClock

    answer = STORE_ANSWER
    scenario = store_scenario("playground_e2e")
    histories: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    # Pace 2 (as the WebRTC twin): at pace 1 a loaded machine slows generation until the page
    # has played all it received when the caller cuts in, and the cut answer reads "full".
    async with SimServer(scenario=scenario, pace=2.0) as sim:
        model = OpenAIRealtimeModel(
            "gpt-realtime", api_key="sim-local", base_url=api_root(sim.url), reconnect=False
        )

        async def on_call(transport: PlaygroundTransport) -> None:
            session = AgentSession(model, transport, clock=MonotonicClock())
            await session.start(Agent(instructions="You answer questions about the store."))
            try:
                await transport.wait_closed()
            finally:
                await histories.put(session.history_json())
                await session.aclose()

        endpoint = await serve_playground(on_call, port=0)
        async with endpoint, launched_chromium(barge_in_mic) as browser:
            page = await browser.new_page()
            await page.goto(endpoint.url)
            await page.click("#start")
            await page.wait_for_selector("body[data-audio=ready]", timeout=15_000)
            # Wait until the second agent message has its verdict (interrupted).
            await page.wait_for_selector(
                ".msg.agent[data-verdict] ~ .msg.agent[data-verdict]", timeout=40_000
            )
            async with asyncio.timeout(10):  # the truncate follows the history's update
                await until(lambda: bool(truncates(sim)))
            bubbles = await page.eval_on_selector_all(
                ".msg.agent",
                """els => els.map(e => ({id: e.dataset.id, verdict: e.dataset.verdict,
                    text: e.querySelector('.text').textContent,
                    played: e.dataset.playedMs, local: e.dataset.localPlayedMs}))""",
            )
            await page.click("#stop")
            history = await asyncio.wait_for(histories.get(), 15)
        sent_truncates = truncates(sim)

    first, second = bubbles[0], bubbles[1]
    assert first["verdict"] == "full" and first["text"] == "Sure, one moment."
    assert second["verdict"] == "partial", bubbles
    assert second["text"] and answer.startswith(second["text"]) and second["text"] != answer
    # The server's played position is the page player's own stop position.
    assert abs(float(second["played"]) - float(second["local"])) <= 1

    items = {item["id"]: item for item in history["items"]}
    heard = items[second["id"]]
    assert heard["interrupted"] is True
    assert heard["text"] == second["text"]  # page transcript == server history
    assert abs(heard["played_ms"] - float(second["played"])) <= 1
    assert items[first["id"]]["text"] == first["text"]

    assert [t["item_id"] for t in sent_truncates] == [second["id"]]
    # At the page's stop position — or, when the stop lands within the last 50 ms of the audio
    # the server generated before it cancelled (generation runs not far ahead of playback),
    # on the server's 50 ms accounting just below it (never beyond what was heard).
    played = float(second["played"])
    assert played - 50 < sent_truncates[0]["audio_end_ms"] <= played + 1
