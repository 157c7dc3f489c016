"""The demo's phone line: a simulated caller in, a real-time clocked sink out, a stereo record.

Why: `vocalis demo` has no WAV and no sound card, yet must behave like a real call — caller
audio paced at real time, agent audio consumed at real time by a playback clock (so
`played_ms` is what a listener would have heard), and a recording with the caller on the left
and the agent *as played* on the right, on one clock timeline (the file transport's
`StereoRecorder`).
"""

from __future__ import annotations

from vocalis.audio.frame import Int16Array
from vocalis.audio.resample import StreamResampler
from vocalis.sim.caller import SimulatedCaller
from vocalis.transports.base import TextSink, Transport
from vocalis.transports.clocked import ClockedAudioSink
from vocalis.transports.file import StereoRecorder
from vocalis.utils.clock import Clock


class CallerTransport(Transport):
    def __init__(
        self,
        caller: SimulatedCaller,
        clock: Clock,
        *,
        sample_rate: int = 24000,
        text_sink: TextSink | None = None,
    ) -> None:
        self.clock = clock
        self.caller = caller
        self.recorder = StereoRecorder(sample_rate)
        self.sink = ClockedAudioSink(clock, sample_rate, on_frame=self._on_agent_frame)
        self._text = text_sink
        self._to_record: StreamResampler | None = None
        caller.set_frame_callback(self._on_caller_frame)

    def _on_agent_frame(self, samples: Int16Array, segment_id: str, t: float) -> None:
        self.recorder.add_agent(samples, t)

    def _on_caller_frame(self, samples: Int16Array, rate: int, t: float) -> None:
        # The caller sends at the provider's input rate; the recording is at the sink rate
        # (equal rates pass through the resampler untouched).
        if self._to_record is None:
            self._to_record = StreamResampler(rate, self.recorder.sample_rate)
        converted = self._to_record.push(samples)
        if converted.shape[0]:
            self.recorder.add_caller(converted, t)

    @property
    def audio_in(self) -> SimulatedCaller:
        return self.caller

    @property
    def audio_out(self) -> ClockedAudioSink:
        return self.sink

    @property
    def text_out(self) -> TextSink | None:
        return self._text

    async def wait_closed(self) -> None:
        while not self.caller.hung_up:
            await self.clock.sleep(self.sink.frame_ms / 1000.0)

    async def aclose(self) -> None:
        await self.sink.aclose()
        self.recorder.extend_to(self.clock.now())
