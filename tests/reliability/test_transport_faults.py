"""Fault matrix, caller side: hang-ups, slow consumers, audio in the wrong shape.

Real sim + OpenAI client + `AgentSession` + `MemoryTransport` on a `ManualClock`; the harness
checks on exit that no task or fd leaked, the heard contract holds and no history item was lost.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import numpy as np
import pytest
import soxr
from reliability_support import (
    RATE,
    Harness,
    check_provider_matches,
    harness,
    server_vad,
    silence,
    speech,
)

from vocalis.audio.frame import AudioFrame
from vocalis.runtime.agent import Agent
from vocalis.runtime.events import (
    AgentStateChanged,
    ConversationItemAdded,
    SessionClosedEvent,
    SessionEvent,
)
from vocalis.runtime.options import AgentSessionOptions
from vocalis.runtime.tools import function_tool

LONG = (
    "This is a long answer, and the caller will hang up somewhere in the middle of it, "
    "long before the end of this sentence."
)
OPTIONS = AgentSessionOptions(
    turn_detection=server_vad(), input_transcription_model="gpt-4o-mini-transcribe"
)


def appended_ms(h: Harness) -> float:
    """Caller audio the provider received (24 kHz PCM16 byte counts in the sim's record)."""
    total = sum(
        int(e["audio"]) for e in h.sim.client_events if e["type"] == "input_audio_buffer.append"
    )
    return total / 2 * 1000.0 / RATE


# --------------------------------------------------------------------------- hang-ups


async def test_caller_hangs_up_mid_answer() -> None:
    """The session closes cleanly and the history keeps what the caller heard."""
    scenario = {"responses": [{"say": LONG}]}
    async with harness(scenario, options=OPTIONS) as h:
        h.say("Tell me a story.")
        run = await h.response(0)
        message = run.playout.pulled[0].message
        await h.play_until(lambda: h.recorder.played_ms(message.item_id) >= 1000)
        h.transport.hang_up()
        await h.transport.wait_closed()
        await h.session.aclose()
        assert run.settled
        (kept,) = h.assistant_messages()
        assert kept.id == message.item_id and kept.interrupted
        assert kept.played_ms is not None
        assert 1000 <= kept.played_ms <= 1040 and LONG.startswith(kept.text) and kept.text
        closed = [e for e in h.session.event_log if isinstance(e, SessionClosedEvent)]
        assert len(closed) == 1
        assert h.session.agent_state == "closed"
        saved = h.session.history_json()
        assert [i["id"] for i in saved["items"]][-1] == kept.id


async def test_caller_hangs_up_while_a_tool_runs() -> None:
    """The call and its (cancelled) output are both kept: a call id never stays unanswered."""
    scenario = {
        "responses": [
            {
                "items": [
                    {"say": "One moment please."},
                    {"call": "slow_lookup", "arguments": {"q": "x"}, "call_id": "call_hangup"},
                ]
            }
        ]
    }
    started = asyncio.Event()

    @function_tool
    async def slow_lookup(q: str) -> str:
        """Looks something up, slowly."""
        started.set()
        await asyncio.sleep(3600)
        return "never"

    async with harness(scenario, agent=Agent("Agent.", tools=[slow_lookup]), options=OPTIONS) as h:
        h.say("Look it up.")
        run = await h.response(0)
        await h.play_until(lambda: run.playout_finished)
        await asyncio.wait_for(started.wait(), 10)
        h.transport.hang_up()
        await h.session.aclose()
        assert run.settled
        calls = [i for i in h.session.history if i.type == "function_call"]
        outputs = [i for i in h.session.history if i.type == "function_call_output"]
        assert [c.call_id for c in calls] == ["call_hangup"]
        assert [o.call_id for o in outputs] == ["call_hangup"]
        assert outputs[0].is_error and "cancel" in outputs[0].output


# --------------------------------------------------------------------------- slow consumers


async def test_slow_event_consumer_never_blocks_the_session() -> None:
    """An app reading `session.events()` slowly (or not at all) cannot stall the call."""
    scenario = {"responses": [{"say": "First."}, {"say": "Second."}]}
    async with harness(scenario, options=OPTIONS) as h:
        stream = h.session.events()
        received: list[SessionEvent] = []
        gate = asyncio.Event()

        async def slow_reader() -> None:
            async for event in stream:
                await gate.wait()  # the app is busy for the whole call
                received.append(event)

        reader = asyncio.create_task(slow_reader())
        await h.turn("Hello.", 0)
        await h.turn("Hello again.", 1)
        assert [m.text for m in h.assistant_messages()] == ["First.", "Second."]
        gate.set()
        await h.session.aclose()
        await asyncio.wait_for(reader, 10)
        # Every event reached the slow reader, in order, ending with the close.
        assert received == h.session.event_log[-len(received) :]
        assert isinstance(received[-1], SessionClosedEvent)


async def test_raising_event_callback_is_contained(caplog: pytest.LogCaptureFixture) -> None:
    """A bug in the app's callback is logged, never breaks the session."""
    scenario = {"responses": [{"say": "First."}, {"say": "Second."}]}
    async with harness(scenario, options=OPTIONS) as h:

        def broken(event: Any) -> None:
            raise RuntimeError("app bug")

        h.session.on(ConversationItemAdded, broken)
        h.session.on(AgentStateChanged, broken)
        with caplog.at_level(logging.ERROR):
            await h.turn("Hello.", 0)
            await h.turn("Hello again.", 1)
        assert [m.text for m in h.assistant_messages()] == ["First.", "Second."]
        assert any("callback" in r.getMessage() for r in caplog.records)


async def test_slow_playback_keeps_barge_in_prompt() -> None:
    """A 6 s answer arrives at once (a fast model, slow playback): the backlog does not
    delay the barge-in — the sink is cleared the moment the provider reports speech."""
    scenario = {"responses": [{"say": LONG + " " + LONG}, {"say": "Go ahead."}]}
    async with harness(scenario, options=OPTIONS) as h:
        h.say("Tell me a story.")
        run = await h.response(0)
        message = run.playout.pulled[0].message
        assert message.audio_received_ms > 6000  # all of it buffered before playing
        await h.play(1.0)
        h.transport.source.push(speech("Stop please."))
        await h.until(lambda: run.interrupted)
        played = h.recorder.played_ms(message.item_id)
        assert played <= 1020  # the clock did not move: nothing more was played
        h.silence()
        second = await h.response(1, generated=False)
        await h.finish(second)
        await h.settled()
        check_provider_matches(h)


# --------------------------------------------------------------------------- audio shape


@pytest.mark.parametrize("rate", [8000, 16000, 44100, 48000])
async def test_caller_audio_at_another_sample_rate_is_converted(rate: int) -> None:
    scenario = {"responses": [{"say": "I heard you."}]}
    async with harness(scenario, options=OPTIONS) as h:
        voice = speech("Can you hear me at this rate?")
        pushed = np.concatenate([voice, silence(700)])
        converted = soxr.resample(pushed, RATE, rate).astype(np.int16)
        duration_ms = converted.shape[0] * 1000.0 / rate
        for start in range(0, converted.shape[0], rate // 50):
            h.transport.source.push(AudioFrame(converted[start : start + rate // 50], rate))
        run = await h.response(0, generated=False)
        await h.finish(run)
        assert h.assistant_messages()[-1].text == "I heard you."
        # A streaming resampler holds a few ms back until more audio (or the end) comes.
        h.transport.source.close()
        await h.until(lambda: appended_ms(h) >= duration_ms - 2)
        assert abs(appended_ms(h) - duration_ms) <= 2  # converted, not stretched or cut


async def test_irregular_frame_sizes_and_stereo_are_accepted() -> None:
    scenario = {"responses": [{"say": "I heard you."}]}
    async with harness(scenario, options=OPTIONS) as h:
        audio = np.concatenate([speech("Odd sized frames coming in."), silence(700)])
        sizes = [1, 7, 333, 4801, 2, 960, 17]
        position, k = 0, 0
        while position < audio.shape[0]:
            size = sizes[k % len(sizes)]
            chunk = audio[position : position + size]
            if k % 5 == 4:  # now and then a stereo frame
                h.transport.source.push(AudioFrame(np.stack([chunk, chunk], axis=1), RATE, 2))
            else:
                h.transport.source.push(chunk)
            position += size
            k += 1
        run = await h.response(0, generated=False)
        await h.finish(run)
        assert h.assistant_messages()[-1].text == "I heard you."
        total_ms = audio.shape[0] * 1000.0 / RATE
        await h.until(lambda: appended_ms(h) >= total_ms - 1)
        assert abs(appended_ms(h) - total_ms) <= 1


@pytest.mark.parametrize(
    ("samples", "kwargs", "error", "words"),
    [
        (np.zeros(480, dtype=np.float32), {}, TypeError, "dtype int16"),
        (np.zeros((480, 2), dtype=np.int16), {}, ValueError, "shape (n,)"),
        (np.zeros(480, dtype=np.int16), {"sample_rate": 0}, ValueError, "sample_rate"),
        (np.zeros(480, dtype=np.int16).tolist(), {}, TypeError, "numpy int16 array"),
    ],
    ids=["float32", "stereo-as-mono", "zero-rate", "list"],
)
def test_audio_that_cannot_be_converted_is_refused_clearly(
    samples: Any, kwargs: dict[str, Any], error: type[Exception], words: str
) -> None:
    args = {"sample_rate": RATE, **kwargs}
    with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)")):
        AudioFrame(samples, **args)


def test_pcm_bytes_of_a_partial_sample_are_refused() -> None:
    with pytest.raises(ValueError, match="even number of bytes"):
        AudioFrame.from_pcm16(b"\x00\x01\x02", RATE)
    with pytest.raises(ValueError, match="whole number of 2-channel samples"):
        AudioFrame.from_pcm16(b"\x00\x01", RATE, channels=2)
