"""S26: voice-to-voice latency = end of caller speech -> first audible agent frame played."""

from __future__ import annotations

import numpy as np
from conformance_support import RATE, harness, server_vad, silence, speech

from vocalis.audio.vad import EnergyVAD
from vocalis.runtime.events import TurnMetrics
from vocalis.runtime.options import AgentSessionOptions
from vocalis.utils.clock import settle

FRAME = 480  # 20 ms at 24 kHz
SILENCE_MS = 600


async def test_s26_voice_to_voice_is_measured_from_speech_end_to_first_audible_frame() -> None:
    scenario = {"responses": [{"say": "It is ten past three."}]}
    options = AgentSessionOptions(turn_detection=server_vad(silence_duration_ms=SILENCE_MS))
    async with harness(scenario, options=options) as h:
        voice = speech("What time is it?")
        audio = np.concatenate([silence(200), voice, silence(1500)])
        # Ground truth for "the caller stopped": the same energy VAD the server runs.
        (stop,) = [
            e
            for e in EnergyVAD(RATE, min_silence_ms=SILENCE_MS).process(audio)
            if e.kind == "speech_stopped"
        ]
        t0 = h.clock.now()
        speech_end = t0 + stop.onset_ms / 1000.0
        decided_at_sample = int((stop.onset_ms + SILENCE_MS) * RATE / 1000)
        # The caller talks in real time: frame k is delivered once its 20 ms were spoken.
        for start in range(0, decided_at_sample, FRAME):
            await h.clock.advance(0.02)
            h.transport.source.push(audio[start : start + FRAME])
            await settle()  # delivered now, not at the next clock step
        # The server now decides the turn ended and answers; the clock waits for the answer.
        run = await h.response(0)
        await h.until(lambda: run.playout.first_audio_received_at is not None)
        h.transport.source.push(audio[decided_at_sample + FRAME :])
        await h.play_until(lambda: run.settled)

        metrics = await h.event(TurnMetrics)
        first_voice = h.recorder.first_voice_at()
        assert first_voice is not None
        truth_ms = (first_voice - speech_end) * 1000.0
        assert metrics.voice_to_voice_ms is not None
        assert abs(metrics.voice_to_voice_ms - truth_ms) <= 20
        assert truth_ms >= SILENCE_MS - 20  # the server's silence window is part of it
        # Time to first audio byte is reported separately, from the same start.
        assert metrics.time_to_first_audio_ms is not None
        assert abs(metrics.time_to_first_audio_ms - SILENCE_MS) <= 40
        assert metrics.voice_to_voice_ms >= metrics.time_to_first_audio_ms
        assert metrics.messages[0].played_ms == metrics.messages[0].generated_ms
        # thinking from the end of the caller's speech until the first played frame.
        assert h.session.agent_states == ["listening", "thinking", "speaking", "listening"]
        json_metrics = h.session.history_json()["metrics"][0]
        assert json_metrics["voice_to_voice_ms"] == round(metrics.voice_to_voice_ms, 1)
        # Provider side: the caller's turn and the complete answer, nothing cut or deleted.
        (answer,) = h.session.history[1:]
        assert [(i.type, i.role) for i in h.server_items()] == [
            ("message", "user"),
            ("message", "assistant"),
        ]
        assert h.server_item(answer.id).content[0]["transcript"] == "It is ten past three."
        assert not h.client_events("conversation.item.truncate")
        assert not h.client_events("conversation.item.delete")
