"""Local microphone and speaker through `sounddevice` (optional extra `vocalis[console]`).

Why it exists: the quickest live check of an agent on a laptop. The output side reuses the
`ClockedAudioSink` (real-time pace on the monotonic clock, exact per-segment accounting); each
played frame is resampled to the device rate and handed to the speaker through a small ring
buffer that the PortAudio callback drains. `clear()` also empties that ring, so a barge-in is
silent within one device buffer. The reported `played_ms` counts frames handed to the device:
it runs ahead of what left the speaker by the ring content plus the device latency (tens of
ms) — the documented error of this transport.

`sounddevice` and PortAudio are imported lazily; a missing module, a missing PortAudio
library or a machine without an input/output device raises `ConsoleAudioUnavailable` with one
sentence saying which and how to fix it.
"""

from __future__ import annotations

import asyncio
import threading
from types import ModuleType
from typing import Any

import numpy as np

from vocalis.audio.frame import Int16Array
from vocalis.audio.resample import StreamResampler
from vocalis.transports._source import FixedRateAudioSource
from vocalis.transports.base import Transport
from vocalis.transports.clocked import ClockedAudioSink
from vocalis.utils.clock import Clock, MonotonicClock

__all__ = [
    "ConsoleAudioSink",
    "ConsoleAudioSource",
    "ConsoleAudioUnavailable",
    "ConsoleTransport",
    "SampleRing",
    "load_sounddevice",
]


class ConsoleAudioUnavailable(RuntimeError):
    """No usable local audio (module, PortAudio library or device missing)."""


def load_sounddevice() -> ModuleType:
    """Import `sounddevice`, turning every way it can fail into one clear error."""
    try:
        import sounddevice
    except ImportError:
        raise ConsoleAudioUnavailable(
            "the console transport needs the optional 'sounddevice' package: "
            "pip install 'vocalis[console]' (or uv sync --extra console)"
        ) from None
    except OSError as exc:  # sounddevice imports, but the PortAudio library is missing
        raise ConsoleAudioUnavailable(
            f"PortAudio is not available ({exc}); install it (e.g. apt-get install libportaudio2)"
        ) from None
    module: ModuleType = sounddevice
    return module


def _device_rate(sd: ModuleType, device: int | str | None, kind: str) -> int:
    try:
        info = sd.query_devices(device, kind)
    except Exception as exc:  # sounddevice raises PortAudioError / ValueError
        raise ConsoleAudioUnavailable(f"no audio {kind} device available ({exc})") from None
    return int(info["default_samplerate"])


class SampleRing:
    """Thread-safe FIFO of int16 samples between the event loop and the audio callback.

    Bounded (`capacity` samples): if the device stalls, the oldest audio is dropped instead of
    growing latency forever. `read_into` fills with silence on underrun.
    """

    def __init__(self, capacity: int) -> None:
        self._buf: Int16Array = np.zeros(capacity, dtype=np.int16)
        self._start = 0
        self._size = 0
        self._lock = threading.Lock()
        self.dropped = 0
        self.underruns = 0

    def __len__(self) -> int:
        return self._size

    def write(self, samples: Int16Array) -> None:
        cap = self._buf.shape[0]
        with self._lock:
            n = samples.shape[0]
            if n >= cap:
                self.dropped += self._size + n - cap
                samples = samples[n - cap :]
                n = cap
                self._start, self._size = 0, 0
            overflow = self._size + n - cap
            if overflow > 0:
                self.dropped += overflow
                self._start = (self._start + overflow) % cap
                self._size -= overflow
            end = (self._start + self._size) % cap
            first = min(n, cap - end)
            self._buf[end : end + first] = samples[:first]
            self._buf[: n - first] = samples[first:]
            self._size += n

    def read_into(self, out: Int16Array) -> None:
        cap = self._buf.shape[0]
        with self._lock:
            n = min(out.shape[0], self._size)
            first = min(n, cap - self._start)
            out[:first] = self._buf[self._start : self._start + first]
            out[first:n] = self._buf[: n - first]
            self._start = (self._start + n) % cap
            self._size -= n
        if n < out.shape[0]:
            out[n:] = 0
            if n:  # audio ran out mid-buffer (idle silence is not an underrun)
                self.underruns += 1

    def clear(self) -> None:
        with self._lock:
            self._start, self._size = 0, 0


class ConsoleAudioSink(ClockedAudioSink):
    """A clocked sink whose frames go to the speaker; `clear()` also flushes the device ring."""

    # The speaker's ring holds about one frame: frames must arrive on their own tick.
    share_ticker = False

    def __init__(self, clock: Clock, device_rate: int, sample_rate: int = 24000) -> None:
        super().__init__(clock, sample_rate, 20, on_frame=self._to_device)
        self.device_rate = device_rate
        self.ring = SampleRing(device_rate // 2)  # at most 500 ms queued for the device
        self._resampler = StreamResampler(sample_rate, device_rate, quality="QQ")

    def _to_device(self, samples: Int16Array, segment_id: str, t: float) -> None:
        out = self._resampler.push(samples)
        if out.shape[0]:
            self.ring.write(out)

    def clear(self) -> None:
        super().clear()
        self.ring.clear()

    def device_callback(self, outdata: Any, frames: int, time: Any, status: Any) -> None:
        """PortAudio output callback (audio thread): speaker pulls from the ring."""
        self.ring.read_into(outdata[:, 0])


class ConsoleAudioSource(FixedRateAudioSource):
    """Microphone frames from the PortAudio input callback, converted at the edge."""

    def __init__(self, device_rate: int) -> None:
        super().__init__(device_rate)
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def device_callback(self, indata: Any, frames: int, time: Any, status: Any) -> None:
        """PortAudio input callback (audio thread): copy and hand over to the event loop."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.feed_pcm, np.array(indata[:, 0], dtype=np.int16))


class ConsoleTransport(Transport):
    """Microphone in, speaker out. Call `await start()` before use and `aclose()` after.

    `sounddevice` may be injected (tests pass a fake module with `InputStream`,
    `OutputStream` and `query_devices`).
    """

    def __init__(
        self,
        clock: Clock | None = None,
        *,
        sample_rate: int = 24000,
        input_device: int | str | None = None,
        output_device: int | str | None = None,
        sounddevice: ModuleType | None = None,
    ) -> None:
        sd = sounddevice if sounddevice is not None else load_sounddevice()
        self._sd = sd
        in_rate = _device_rate(sd, input_device, "input")
        out_rate = _device_rate(sd, output_device, "output")
        self.clock: Clock = clock if clock is not None else MonotonicClock()
        self.source = ConsoleAudioSource(in_rate)
        self.sink = ConsoleAudioSink(self.clock, out_rate, sample_rate)
        self._input_device = input_device
        self._output_device = output_device
        self._streams: list[Any] = []
        self._closed = asyncio.Event()

    @property
    def audio_in(self) -> ConsoleAudioSource:
        return self.source

    @property
    def audio_out(self) -> ConsoleAudioSink:
        return self.sink

    async def start(self) -> None:
        self.source.bind(asyncio.get_running_loop())
        sd = self._sd
        try:
            inp = sd.InputStream(
                samplerate=self.source.source_rate,
                channels=1,
                dtype="int16",
                device=self._input_device,
                blocksize=self.source.source_rate // 50,
                callback=self.source.device_callback,
            )
            out = sd.OutputStream(
                samplerate=self.sink.device_rate,
                channels=1,
                dtype="int16",
                device=self._output_device,
                blocksize=self.sink.device_rate // 100,
                callback=self.sink.device_callback,
            )
        except Exception as exc:
            raise ConsoleAudioUnavailable(f"cannot open the audio devices ({exc})") from None
        self._streams = [inp, out]
        for stream in self._streams:
            stream.start()

    def hang_up(self) -> None:
        self.source.close()
        self._closed.set()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    async def aclose(self) -> None:
        self.hang_up()
        await self.sink.aclose()
        for stream in self._streams:
            stream.stop()
            stream.close()
        self._streams = []
