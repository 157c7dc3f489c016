"""MemoryTransport: the in-process transport the runtime's conformance tests use."""

from __future__ import annotations

import asyncio

import numpy as np

from vocalis.audio.frame import AudioFrame
from vocalis.transports.base import PlayoutResult, PlayoutStatus
from vocalis.transports.memory import MemoryTransport
from vocalis.utils.clock import ManualClock, settle


async def test_source_resamples_at_the_edge_and_ends_on_hang_up() -> None:
    clock = ManualClock()
    transport = MemoryTransport(clock, input_rate=24000)
    transport.audio_in.push(np.ones(480, dtype=np.int16))  # 20 ms at the input rate
    transport.audio_in.push(AudioFrame(np.ones(160, dtype=np.int16), 8000))  # 20 ms at 8 kHz
    transport.hang_up()
    frames = [f async for f in transport.audio_in.frames(16000)]
    assert {f.sample_rate for f in frames} == {16000}
    assert sum(f.num_samples for f in frames) == 640  # 40 ms at 16 kHz
    await transport.wait_closed()
    await transport.aclose()


async def test_speak_paces_caller_audio_on_the_clock() -> None:
    clock = ManualClock()
    transport = MemoryTransport(clock)
    received: list[tuple[float, int]] = []

    async def consume() -> None:
        async for frame in transport.audio_in.frames(24000):
            received.append((clock.now(), frame.num_samples))

    consumer = asyncio.create_task(consume())
    speaker = asyncio.create_task(transport.audio_in.speak(np.zeros(2400, dtype=np.int16), clock))
    await settle()
    await clock.advance(0.1)
    await speaker
    transport.hang_up()
    await consumer
    assert [round(t, 3) for t, _ in received] == [0.0, 0.02, 0.04, 0.06, 0.08]
    assert all(n == 480 for _, n in received)


async def test_text_sink_records_and_text_input() -> None:
    clock = ManualClock()
    transport = MemoryTransport(clock)
    text = transport.text_out
    text.agent_text("m1", "Hello ")
    text.agent_text("m1", "there")
    result = PlayoutResult("m1", PlayoutStatus.PARTIAL, 300.0, 900.0)
    text.agent_segment_ended("m1", result, "Hello")
    text.agent_state("speaking")
    text.notice("hi")
    assert text.agent_texts == {"m1": "Hello there"}
    assert text.verdict("m1").heard_text == "Hello"
    assert text.states == ["speaking"] and text.notices == ["hi"]
    assert [e.kind for e in text.events][-2:] == ["agent_state", "notice"]
    transport.send_text("typed")
    transport.hang_up()
    it = transport.text_in()
    assert [m async for m in it] == ["typed"]
    await transport.aclose()


async def test_sink_is_clocked() -> None:
    clock = ManualClock()
    transport = MemoryTransport(clock)
    seg = transport.audio_out.begin_segment("m1", 24000)
    seg.push(np.zeros(24000, dtype=np.int16))
    await clock.advance(0.3)
    transport.audio_out.clear()
    result = await seg.wait_for_playout()
    assert (result.status, result.played_ms) == (PlayoutStatus.PARTIAL, 320.0)
    await transport.aclose()
