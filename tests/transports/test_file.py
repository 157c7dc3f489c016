"""File transport: paced WAV input and a stereo recording aligned on the clock."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest

from vocalis.audio.frame import AudioFrame
from vocalis.audio.wav import read_wav, write_wav
from vocalis.transports.base import PlayoutStatus
from vocalis.transports.file import (
    FileTransport,
    JsonlWriter,
    WavInputError,
    load_input_wav,
    write_history_json,
)
from vocalis.utils.clock import ManualClock, settle

IN_RATE = 16000
OUT_RATE = 24000


def caller_wav(path: Path) -> None:
    """2.5 s: silence, a 440 Hz burst from 1.0 s to 1.5 s, silence."""
    samples = np.zeros(int(2.5 * IN_RATE), dtype=np.int16)
    t = np.arange(int(0.5 * IN_RATE)) / IN_RATE
    samples[IN_RATE : IN_RATE + t.shape[0]] = (np.sin(2 * np.pi * 440 * t) * 12000).astype(np.int16)
    write_wav(path, AudioFrame(samples, IN_RATE))


def active(channel: np.ndarray, threshold: int = 3000) -> tuple[float, float]:
    idx = np.flatnonzero(np.abs(channel.astype(np.int32)) > threshold)
    return idx[0] * 1000 / OUT_RATE, (idx[-1] + 1) * 1000 / OUT_RATE


async def test_stereo_recording_is_aligned_and_has_the_call_duration(tmp_path: Path) -> None:
    wav_in, wav_out = tmp_path / "caller.wav", tmp_path / "out" / "call.wav"
    caller_wav(wav_in)
    clock = ManualClock()
    transport = FileTransport(
        wav_in, clock=clock, sample_rate=OUT_RATE, record_path=wav_out, idle_hangup_s=1.0
    )
    received: list[tuple[float, int]] = []

    async def consume() -> None:
        async for frame in transport.audio_in.frames(24000):
            received.append((clock.now(), frame.num_samples))

    consumer = asyncio.create_task(consume())
    await settle()
    await clock.run_until(2.0, step=0.02)
    # The agent answers at 2.0 s with 1 s of audio and is interrupted at 2.5 s.
    seg = transport.audio_out.begin_segment("m1", OUT_RATE)
    seg.push(np.full(OUT_RATE, 5000, dtype=np.int16))
    seg.end()
    await clock.run_until(0.5, step=0.02)
    transport.audio_out.clear()
    result = await seg.wait_for_playout()
    assert result.status is PlayoutStatus.PARTIAL
    assert result.started_at == pytest.approx(2.0)
    # Input ends at 2.5 s, the agent is quiet: the call hangs up 1 s later.
    await clock.run_until(1.2, step=0.02)
    await asyncio.wait_for(transport.wait_closed(), 1)
    await consumer
    hung_up_at = clock.now()
    await transport.aclose()

    # Caller audio was streamed at real-time pace: one 20 ms frame per 20 ms of clock.
    times = [t for t, _ in received]
    assert times == sorted(times) and times[-1] - times[0] >= 3.4
    assert sum(n for _, n in received) == pytest.approx(3.5 * 24000, abs=480)

    rec = read_wav(wav_out)
    assert (rec.channels, rec.sample_rate) == (2, OUT_RATE)
    assert rec.duration_ms == pytest.approx(hung_up_at * 1000, abs=20)
    caller_on, caller_off = active(rec.samples[:, 0])
    assert caller_on == pytest.approx(1000, abs=20) and caller_off == pytest.approx(1500, abs=20)
    agent = rec.samples[:, 1]
    agent_on, agent_off = active(agent)
    assert agent_on == pytest.approx(2000, abs=0.05)
    # The agent channel holds exactly the played part of the interrupted message.
    assert int(np.count_nonzero(agent)) * 1000 / OUT_RATE == result.played_ms
    assert agent_off - agent_on == result.played_ms
    assert not np.any(rec.samples[: int(2.0 * OUT_RATE), 1])


async def test_file_source_streams_until_hang_up(tmp_path: Path) -> None:
    wav_in = tmp_path / "caller.wav"
    caller_wav(wav_in)
    clock = ManualClock()
    transport = FileTransport(wav_in, clock=clock, max_tail_s=0.2)
    frames: list[AudioFrame] = []

    async def consume() -> None:
        async for frame in transport.audio_in.frames(IN_RATE):
            frames.append(frame)

    task = asyncio.create_task(consume())
    await settle()
    await clock.advance(1.0)
    transport.hang_up()
    await clock.advance(0.02)
    await task
    assert sum(f.num_samples for f in frames) == pytest.approx(IN_RATE * 1.02, abs=320)
    await transport.aclose()


def test_bad_and_stereo_wavs(tmp_path: Path) -> None:
    missing = tmp_path / "nope.wav"
    with pytest.raises(WavInputError, match="not found"):
        load_input_wav(missing)
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"this is not a wav file at all")
    with pytest.raises(WavInputError, match="not a readable WAV"):
        load_input_wav(junk)
    empty = tmp_path / "empty.wav"
    write_wav(empty, AudioFrame(np.zeros(0, dtype=np.int16), 8000))
    with pytest.raises(WavInputError, match="no audio"):
        load_input_wav(empty)
    stereo = tmp_path / "stereo.wav"
    write_wav(stereo, AudioFrame(np.array([[100, 300], [-50, -150]], dtype=np.int16), 8000, 2))
    mono = load_input_wav(stereo)
    assert mono.channels == 1 and mono.samples.tolist() == [200, -100]


def test_history_and_events_writers(tmp_path: Path) -> None:
    write_history_json(tmp_path / "h" / "history.json", {"items": [{"id": "a", "text": "é"}]})
    assert json.loads((tmp_path / "h" / "history.json").read_text())["items"][0]["text"] == "é"
    with JsonlWriter(tmp_path / "events.jsonl") as events:
        events.write({"type": "state", "state": "speaking"})
        events.write({"type": "segment", "played_ms": 520.0})
    lines = (tmp_path / "events.jsonl").read_text().splitlines()
    assert [json.loads(line)["type"] for line in lines] == ["state", "segment"]
