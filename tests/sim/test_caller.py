"""The simulated caller's turn taking, driven by a manual clock (no sleeping, exact positions)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from vocalis.audio.frame import AudioFrame, Int16Array
from vocalis.sim.caller import CallerLine, CallerScript, SimulatedCaller
from vocalis.utils.clock import ManualClock, settle

RATE = 16000


def fake_speech(text: str, sample_rate: int) -> Int16Array:
    """100 ms of 'speech' per word, amplitude 1000 (loud enough to tell from silence)."""
    n = len(text.split()) * sample_rate // 10
    return np.full(n, 1000, dtype=np.int16)


class Harness:
    def __init__(self, caller: SimulatedCaller, clock: ManualClock) -> None:
        self.caller = caller
        self.clock = clock
        self.frames: list[AudioFrame] = []
        self.task = asyncio.create_task(self._consume())

    async def _consume(self) -> None:
        async for frame in self.caller.frames(RATE):
            self.frames.append(frame)

    async def until(self, seconds: float) -> None:
        await settle()  # let the consumer start first: the caller's origin is t=0
        await self.clock.advance(seconds - self.clock.now())

    def loud_ms(self) -> list[tuple[int, int]]:
        """Loud stretches as (start_ms, end_ms) on the caller's timeline."""
        spans: list[tuple[int, int]] = []
        start: int | None = None
        for index, frame in enumerate(self.frames):
            loud = bool(np.any(frame.samples))
            if loud and start is None:
                start = index * 20
            if not loud and start is not None:
                spans.append((start, index * 20))
                start = None
        if start is not None:
            spans.append((start, len(self.frames) * 20))
        return spans


def make(lines: list[CallerLine], clock: ManualClock, **kwargs: float) -> Harness:
    caller = SimulatedCaller(lines, synthesize=fake_speech, clock=clock, **kwargs)  # type: ignore[arg-type]
    return Harness(caller, clock)


async def test_waits_for_the_agent_then_hangs_up() -> None:
    clock = ManualClock()
    h = make([CallerLine("one two three"), CallerLine("four five")], clock, settle_ms=400)
    await h.until(1.0)
    # Lead-in 600 ms, then 300 ms of speech.
    assert h.loud_ms() == [(600, 900)]
    h.caller.on_agent_state("thinking")
    await h.until(1.2)
    h.caller.on_agent_state("speaking")
    await h.until(2.0)
    h.caller.on_agent_state("listening")
    await h.until(2.3)
    assert h.loud_ms() == [(600, 900)], "must not talk while the agent has not settled"
    await h.until(3.0)
    # Settled at 2.4 s → second line 200 ms long.
    assert h.loud_ms() == [(600, 900), (2400, 2600)]
    assert [u.text for u in h.caller.utterances] == ["one two three", "four five"]
    h.caller.on_agent_state("speaking")
    await h.until(3.5)
    h.caller.on_agent_state("listening")
    await h.until(5.0)
    await asyncio.wait_for(h.task, 1)
    assert h.caller.hung_up
    assert h.caller.problems == []
    # Hang-up: settle (400 ms after 3.5 s) + tail 500 ms.
    assert len(h.frames) * 20 == 4400


async def test_barges_in_at_the_chosen_point_of_the_answer() -> None:
    clock = ManualClock()
    lines = [CallerLine("question"), CallerLine("stop please", barge_in_after_ms=700)]
    h = make(lines, clock, settle_ms=400)
    await h.until(1.0)
    h.caller.on_agent_state("thinking")
    await h.until(1.5)
    h.caller.on_agent_state("speaking")  # the agent's answer starts at 1.5 s
    await h.until(2.6)
    assert h.loud_ms() == [(600, 700), (2200, 2400)]
    barge = h.caller.utterances[1]
    assert barge.barge_in and barge.start_ms == 2200 and barge.end_ms == 2400


async def test_a_brief_listening_gap_between_responses_is_not_the_end() -> None:
    """Preamble → tool → follow-up: the short listening gap must not start the next line."""
    clock = ManualClock()
    h = make([CallerLine("weather"), CallerLine("thanks")], clock, settle_ms=800)
    await h.until(0.8)
    h.caller.on_agent_state("speaking")  # preamble
    await h.until(1.5)
    h.caller.on_agent_state("listening")  # tool runs
    await h.until(2.0)
    h.caller.on_agent_state("thinking")
    await h.until(2.1)
    h.caller.on_agent_state("speaking")  # the answer
    await h.until(3.0)
    assert len(h.loud_ms()) == 1
    h.caller.on_agent_state("listening")
    await h.until(4.2)
    assert h.loud_ms()[1][0] == 3800


async def test_agent_idle_predicate_holds_the_next_line() -> None:
    clock = ManualClock()
    idle = False
    caller = SimulatedCaller(
        [CallerLine("a"), CallerLine("b")],
        synthesize=fake_speech,
        clock=clock,
        settle_ms=200,
        agent_idle=lambda: idle,
    )
    h = Harness(caller, clock)
    await h.until(0.8)
    caller.on_agent_state("speaking")
    await h.until(1.0)
    caller.on_agent_state("listening")
    await h.until(2.0)
    assert len(h.loud_ms()) == 1
    idle = True
    await h.until(2.5)
    # The frame at 2.0 s was already sent when idle turned true: the next one starts the line.
    assert h.loud_ms()[1][0] == 2020


async def test_no_answer_is_a_problem_not_a_hang() -> None:
    clock = ManualClock()
    h = make([CallerLine("hello?"), CallerLine("anyone")], clock, answer_timeout_s=2.0)
    await h.until(5.0)
    await asyncio.wait_for(h.task, 1)
    assert h.caller.hung_up
    assert h.caller.problems == ["the agent did not answer 'hello?' within 2 s"]
    assert len(h.loud_ms()) == 1


async def test_missed_barge_in_is_reported() -> None:
    clock = ManualClock()
    lines = [CallerLine("q"), CallerLine("interrupt", barge_in_after_ms=5000)]
    h = make(lines, clock, settle_ms=200)
    await h.until(0.8)
    h.caller.on_agent_state("speaking")
    await h.until(1.0)
    h.caller.on_agent_state("listening")
    await h.until(1.5)
    assert len(h.loud_ms()) == 2
    assert "before the planned barge-in" in h.caller.problems[0]


def test_script_from_data() -> None:
    script = CallerScript.from_data(["hi", {"say": "stop", "barge_in_after_ms": 1500}])
    assert script.lines == [CallerLine("hi"), CallerLine("stop", 1500.0)]
    with pytest.raises(ValueError, match="caller line 1"):
        CallerScript.from_data(["hi", {"text": "nope"}])


def test_first_line_cannot_barge_in() -> None:
    with pytest.raises(ValueError, match="first line"):
        SimulatedCaller([CallerLine("x", barge_in_after_ms=10)], synthesize=fake_speech)


def test_espeak_voice_is_real_speech() -> None:
    from vocalis.sim.caller import espeak_synthesizer

    samples = espeak_synthesizer()("What is the weather in Paris?", RATE)
    assert samples.dtype == np.int16
    assert 800 < samples.shape[0] * 1000 / RATE < 4000
    assert int(np.abs(samples.astype(np.int32)).max()) > 3000
