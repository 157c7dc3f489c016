"""Console transport without a sound card: a fake `sounddevice` drives the device callbacks."""

from __future__ import annotations

import builtins
import sys
import types
from typing import Any

import numpy as np
import pytest

from vocalis.transports.base import PlayoutStatus
from vocalis.transports.console import (
    ConsoleAudioUnavailable,
    ConsoleTransport,
    SampleRing,
    load_sounddevice,
)
from vocalis.utils.clock import ManualClock, settle


class FakeStream:
    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.callback = kwargs["callback"]
        self.started = self.closed = False

    def start(self) -> None:
        self.started = True

    def stop(self) -> None:
        self.started = False

    def close(self) -> None:
        self.closed = True


def fake_sd(devices: bool = True) -> types.ModuleType:
    sd = types.ModuleType("sounddevice")

    def query_devices(device: Any, kind: str) -> dict[str, Any]:
        if not devices:
            raise ValueError(f"No {kind} device found")
        return {"default_samplerate": 48000.0 if kind == "output" else 16000.0}

    sd.query_devices = query_devices  # type: ignore[attr-defined]
    sd.InputStream = FakeStream  # type: ignore[attr-defined]
    sd.OutputStream = FakeStream  # type: ignore[attr-defined]
    return sd


def test_missing_module_or_device_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_sounddevice(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "sounddevice":
            raise ImportError("No module named 'sounddevice'")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_sounddevice)
    with pytest.raises(ConsoleAudioUnavailable, match=r"vocalis\[console\]"):
        load_sounddevice()
    monkeypatch.setattr(builtins, "__import__", real_import)
    with pytest.raises(ConsoleAudioUnavailable, match="no audio input device"):
        ConsoleTransport(sounddevice=fake_sd(devices=False))


def test_ring_buffer_is_bounded_and_fifo() -> None:
    ring = SampleRing(8)
    ring.write(np.arange(1, 6, dtype=np.int16))
    ring.write(np.arange(6, 12, dtype=np.int16))  # 11 > 8: the 3 oldest are dropped
    assert ring.dropped == 3 and len(ring) == 8
    out = np.empty(5, dtype=np.int16)
    ring.read_into(out)
    assert out.tolist() == [4, 5, 6, 7, 8]
    out = np.empty(5, dtype=np.int16)
    ring.read_into(out)
    assert out.tolist() == [9, 10, 11, 0, 0] and ring.underruns == 1


async def test_console_plays_through_the_device_callback_and_clear_flushes() -> None:
    clock = ManualClock()
    transport = ConsoleTransport(clock, sounddevice=fake_sd())
    await transport.start()
    mic, speaker = transport._streams
    assert mic.started and speaker.kwargs["samplerate"] == 48000

    # Microphone: 16 kHz device frames arrive from the audio thread, resampled to 24 kHz.
    for _ in range(25):
        mic.callback(np.full((320, 1), 1000, dtype=np.int16), 320, None, None)
    await settle()  # the callbacks were handed over with call_soon_threadsafe
    transport.hang_up()
    got = [f async for f in transport.audio_in.frames(24000)]
    assert sum(f.num_samples for f in got) > 0 and got[0].sample_rate == 24000

    # Speaker: the clocked sink feeds the device ring at 48 kHz.
    seg = transport.audio_out.begin_segment("m", 24000)
    seg.push(np.full(24000, 3000, dtype=np.int16))
    seg.end()
    await clock.advance(0.2)
    assert len(transport.audio_out.ring) > 0
    block = np.zeros((480, 1), dtype=np.int16)
    speaker.callback(block, 480, None, None)
    assert np.any(block != 0)
    transport.audio_out.clear()
    assert len(transport.audio_out.ring) == 0  # barge-in is silent at once
    result = await seg.wait_for_playout()
    assert (result.status, result.played_ms) == (PlayoutStatus.PARTIAL, 220.0)
    await transport.aclose()
    assert speaker.closed and mic.closed
