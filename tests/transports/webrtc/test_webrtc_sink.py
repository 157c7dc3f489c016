"""`WebRTCAudioSink` on a `ManualClock`: frames pulled through its public track, the page's
reports given as RTP timestamps, verdicts observed through the segment contract.

The RTP origin is set by hand (aiortc's sender learns it on a real connection; the browser
tests cover that), so every position here is exact.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from vocalis.transports.base import PlayoutStatus
from vocalis.transports.webrtc.sink import WebRTCAudioSink
from vocalis.transports.webrtc.timeline import FRAME_SAMPLES, RTP_MODULUS
from vocalis.utils.clock import ManualClock

F = FRAME_SAMPLES
ORIGIN = RTP_MODULUS - 5 * F  # the stream wraps the 32-bit RTP clock after 5 frames


class Page:
    """What the browser would see: the sink's messages and the frames of its track."""

    def __init__(self) -> None:
        self.clock = ManualClock()
        self.messages: list[dict[str, object]] = []
        self.sink = WebRTCAudioSink(self.messages.append, self.clock)
        self.sink.track.rtp_origin = ORIGIN
        self.frames: list[np.ndarray] = []

    async def pull(self, count: int) -> None:
        """Let the track emit `count` frames (20 ms of clock each)."""
        for _ in range(count):
            task = asyncio.ensure_future(self.sink.track.recv())
            await self.clock.advance(F / 48000 + 1e-9)  # 1e-9: float sums of 0.02 fall short
            frame = await task
            self.frames.append(frame.to_ndarray().reshape(-1).copy())

    def rtp(self, position: int) -> int:
        return (ORIGIN + position) % RTP_MODULUS

    def sent(self, kind: str) -> list[dict[str, object]]:
        return [m for m in self.messages if m["type"] == kind]


def tone(ms: int, rate: int = 48000) -> np.ndarray:
    return np.full(rate * ms // 1000, 1000, dtype=np.int16)


async def test_full_at_the_reported_end_of_each_message() -> None:
    page = Page()
    sink = page.sink
    first = sink.begin_segment("item_1", 48000)
    second = sink.begin_segment("item_2", 24000)
    first.push(tone(50))
    first.end()
    second.push(tone(100, 24000))
    second.end()
    await page.pull(9)
    assert [m["n"] for m in page.sent("start")] == [1, 2]
    assert page.sent("start")[1]["rtp"] == page.rtp(2400)  # right after message 1's end
    sink.on_position(page.rtp(2400 - 1))
    assert not first.done and first.started.done()
    sink.on_position(page.rtp(2400))
    result = await first.wait_for_playout()
    assert result.status is PlayoutStatus.FULL and result.played_ms == 50.0
    sink.on_position(page.rtp(7200))
    result = await second.wait_for_playout()
    assert result.status is PlayoutStatus.FULL and result.played_ms == pytest.approx(100, abs=0.1)
    assert not sink.playing


async def test_clear_stops_the_stream_and_resolves_at_the_page_position() -> None:
    page = Page()
    sink = page.sink
    seg = sink.begin_segment("item_1", 48000)
    queued = sink.begin_segment("item_2", 48000)
    seg.push(tone(1000))
    queued.push(tone(100))
    await page.pull(10)
    sink.on_position(page.rtp(6 * F))
    sink.clear()
    [clear] = page.sent("clear")
    assert clear["rtp"] == page.rtp(10 * F)  # nothing of message 1 after the stop
    seg.push(tone(100))  # a late delta: dropped
    await page.pull(3)
    assert not any(f.any() for f in page.frames[10:])
    sink.on_cleared(page.rtp(8 * F + 100))  # where the page muted
    result = await seg.wait_for_playout()
    assert result.status is PlayoutStatus.PARTIAL
    assert result.played_ms == (8 * F + 100) / 48 and result.pushed_ms == 1000.0
    assert (await queued.wait_for_playout()).status is PlayoutStatus.SKIPPED


async def test_unanswered_clear_resolves_from_the_last_report() -> None:
    page = Page()
    sink = page.sink
    seg = sink.begin_segment("item_1", 48000)
    seg.push(tone(1000))
    await page.pull(10)
    sink.on_position(page.rtp(4 * F))
    sink.clear()
    await page.pull(49)
    assert not seg.done
    await page.pull(2)  # clear_timeout_s (1 s) of clock has passed
    result = await seg.wait_for_playout()
    assert result.played_ms == 4 * F / 48 and sink.clear_timeouts == 1


async def test_a_silent_page_trips_the_report_watchdog() -> None:
    page = Page()
    sink = page.sink
    seg = sink.begin_segment("item_1", 48000)
    seg.push(tone(10_000))
    await page.pull(5)
    sink.on_position(page.rtp(3 * F))
    await page.pull(151)  # report_timeout_s (3 s) without a report
    result = await seg.wait_for_playout()
    assert result.status is PlayoutStatus.PARTIAL and result.played_ms == 60.0
    assert sink.report_timeouts == 1 and page.sent("clear")


async def test_reports_from_the_future_or_far_past_are_ignored() -> None:
    """A report cannot claim audio the server has not sent, nor move positions backwards."""
    page = Page()
    sink = page.sink
    seg = sink.begin_segment("item_1", 48000)
    seg.push(tone(100))
    seg.end()
    await page.pull(3)
    sink.on_position(page.rtp(10 * F))  # not sent yet
    sink.on_position((ORIGIN + RTP_MODULUS // 2) % RTP_MODULUS)
    assert sink.ignored_reports == 2 and seg.played_ms == 0
    sink.on_position(page.rtp(2 * F))
    sink.on_position(page.rtp(F))  # stale: positions never go back
    assert seg.played_ms == 40.0


async def test_pause_holds_the_stream_and_positions() -> None:
    page = Page()
    sink = page.sink
    seg = sink.begin_segment("item_1", 48000)
    seg.push(tone(200))
    seg.end()
    await page.pull(2)
    sink.pause()
    await page.pull(5)
    assert not any(f.any() for f in page.frames[2:])
    sink.on_position(page.rtp(7 * F))  # the page played all of it: 40 ms of audio, then silence
    assert seg.played_ms == 40.0
    sink.resume()
    await page.pull(9)
    sink.on_position(page.rtp(16 * F))
    result = await seg.wait_for_playout()
    assert result.status is PlayoutStatus.FULL and result.played_ms == 200.0


async def test_connection_lost_resolves_everything() -> None:
    page = Page()
    sink = page.sink
    seg = sink.begin_segment("item_1", 48000)
    later = sink.begin_segment("item_2", 48000)
    seg.push(tone(500))
    await page.pull(5)
    sink.on_position(page.rtp(2 * F))
    await sink.aclose()
    assert (await seg.wait_for_playout()).played_ms == 40.0
    assert (await later.wait_for_playout()).status is PlayoutStatus.SKIPPED
    with pytest.raises(RuntimeError):
        sink.begin_segment("item_3", 48000)
