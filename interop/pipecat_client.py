"""Pipecat (OpenAI realtime service) as a client of `vocalis sim-server` (make interop).

Runs in its own virtualenv (interop/requirements-pipecat.txt), started by interop/run.py:

    python pipecat_client.py BASE_URL CALLER_DIR [CERT]

With CERT (the sim's TLS certificate) the pipeline uses Pipecat's Gemini Live service
(google-genai) against ``sim-server --protocol gemini --tls`` instead of OpenAI's.

A Pipecat pipeline ``input -> user aggregator -> OpenAIRealtimeLLMService -> output ->
assistant aggregator`` with a ``get_weather`` function, no network transport: the input
transport streams the caller's WAV lines (silence between them) in 20 ms frames at real time,
the output transport "plays" at real time (``write_audio_frame`` takes as long as the audio
lasts), so Pipecat's own timing decides what it truncates on a barge-in. Same script as
livekit_client.py; the sim judges.
"""

from __future__ import annotations

import asyncio
import ssl
import sys
import time
import wave
from pathlib import Path

from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
from pipecat.adapters.llm.schemas.tools_schema import ToolsSchema
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    EndFrame,
    Frame,
    InputAudioRawFrame,
    LLMRunFrame,
    OutputAudioRawFrame,
    StartFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.runner import PipelineRunner
from pipecat.pipeline.task import PipelineParams, PipelineTask
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import LLMContextAggregatorPair
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.llm_service import FunctionCallParams, LLMService
from pipecat.services.openai.realtime import events
from pipecat.services.openai.realtime.llm import OpenAIRealtimeLLMService
from pipecat.transports.base_input import BaseInputTransport
from pipecat.transports.base_output import BaseOutputTransport
from pipecat.transports.base_transport import TransportParams

INSTRUCTIONS = "You are a concise weather assistant."
RATE = 24000
FRAME = RATE // 50  # 20 ms


def _pcm(path: Path) -> bytes:
    with wave.open(str(path)) as wav:
        return wav.readframes(wav.getnframes())


class Caller(BaseInputTransport):
    """Real-time caller audio: silence, with queued lines spoken when `say` is called."""

    def __init__(self, params: TransportParams) -> None:
        super().__init__(params)
        self._pending = bytearray()
        self._task: asyncio.Task[None] | None = None

    def say(self, pcm: bytes) -> None:
        self._pending += pcm

    async def start(self, frame: StartFrame) -> None:
        await super().start(frame)
        await self.set_transport_ready(frame)
        self._task = asyncio.get_running_loop().create_task(self._stream())

    async def _stream(self) -> None:
        next_at = time.monotonic()
        while True:
            next_at += FRAME / RATE
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            chunk = bytes(self._pending[: FRAME * 2]).ljust(FRAME * 2, b"\0")
            del self._pending[: FRAME * 2]
            await self.push_audio_frame(InputAudioRawFrame(chunk, RATE, 1))

    async def cleanup(self) -> None:
        if self._task is not None:
            self._task.cancel()
        await super().cleanup()


class Player(BaseOutputTransport):
    """A real-time device: writing a frame takes as long as it plays."""

    async def start(self, frame: StartFrame) -> None:
        await super().start(frame)
        await self.set_transport_ready(frame)

    async def write_audio_frame(self, frame: OutputAudioRawFrame) -> bool:
        await asyncio.sleep(len(frame.audio) / 2 / frame.sample_rate)
        return True


class Watcher(FrameProcessor):
    """Follows the bot's speaking turns (the script waits on them)."""

    def __init__(self) -> None:
        super().__init__()
        self.started = 0
        self.speaking = False
        self.changed = asyncio.Event()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, BotStartedSpeakingFrame):
            self.started += 1
            self.speaking = True
        elif isinstance(frame, BotStoppedSpeakingFrame):
            self.speaking = False
        self.changed.set()
        self.changed = asyncio.Event()
        await self.push_frame(frame, direction)

    async def wait(self, predicate: object) -> None:
        while not predicate():  # type: ignore[operator]
            await self.changed.wait()

    async def quiet(self, after: int, seconds: float = 1.5) -> None:
        """Until the bot spoke (more than ``after`` turns) and then kept silent ``seconds``.

        How many speaking turns an answer makes differs between services (a preamble and
        the answer after a tool call may be one turn or two), so the script waits for a
        pause, like a caller would.
        """
        while True:
            await self.wait(lambda: self.started > after and not self.speaking)
            try:
                async with asyncio.timeout(seconds):
                    await self.wait(lambda: self.speaking)
            except TimeoutError:
                return


async def get_weather(params: FunctionCallParams) -> None:
    city = params.arguments.get("city", "")
    await params.result_callback({"city": city, "sky": "sunny", "temperature_c": 22})


WEATHER = FunctionSchema(
    name="get_weather",
    description="Current weather for a city.",
    properties={"city": {"type": "string", "description": "The city name."}},
    required=["city"],
)


async def script(
    caller: Caller, watcher: Watcher, task: PipelineTask, lines: list[bytes], gemini: bool
) -> None:
    if gemini:
        # Pipecat's Gemini service takes caller audio once its context is initialized (the
        # service was told not to answer that first context: the caller speaks first).
        await task.queue_frame(LLMRunFrame())
    await asyncio.sleep(1.5)
    caller.say(lines[0])  # the question: a preamble and a tool call, then the answer
    await watcher.quiet(after=0)
    caller.say(lines[1])  # the second question: a long answer ...
    spoken = watcher.started
    await watcher.wait(lambda: watcher.started > spoken)
    await asyncio.sleep(1.5)
    caller.say(lines[2])  # ... cut by the caller
    await watcher.quiet(after=spoken + 1)
    await task.queue_frame(EndFrame())


def realtime_service(base_url: str, cert: str | None) -> LLMService:
    if cert is not None:
        # google-genai always connects with wss://: trust the sim's certificate (issue 21).
        from google.genai.types import HttpOptions
        from pipecat.services.google.gemini_live.llm import GeminiLiveLLMService

        context = ssl.create_default_context(cafile=cert)
        options = HttpOptions(
            base_url=base_url, api_version="v1beta", async_client_args={"ssl": context}
        )
        return GeminiLiveLLMService(
            api_key="interop",
            system_instruction=INSTRUCTIONS,
            tools=ToolsSchema(standard_tools=[WEATHER]),
            inference_on_context_initialization=False,  # the caller speaks first
            http_options=options,
        )
    ws_url = base_url.replace("http://", "ws://").replace("https://", "wss://") + "/realtime"
    # Instructions and tools as Pipecat's realtime examples give them: in the session
    # properties, so they go out with the first session.update.
    settings = OpenAIRealtimeLLMService.Settings(
        system_instruction=INSTRUCTIONS,
        session_properties=events.SessionProperties(tools=ToolsSchema(standard_tools=[WEATHER])),
    )
    return OpenAIRealtimeLLMService(api_key="sk-interop", base_url=ws_url, settings=settings)


async def main(base_url: str, caller_dir: Path, cert: str | None) -> None:
    lines = [_pcm(caller_dir / f"line{i}.wav") for i in (1, 2, 3)]
    params = TransportParams(
        audio_in_enabled=True,
        audio_in_sample_rate=RATE,
        audio_out_enabled=True,
        audio_out_sample_rate=RATE,
    )
    caller, player, watcher = Caller(params), Player(params), Watcher()
    llm = realtime_service(base_url, cert)
    llm.register_function("get_weather", get_weather)
    context = LLMContext(messages=[{"role": "system", "content": INSTRUCTIONS}], tools=[WEATHER])
    aggregators = LLMContextAggregatorPair(context)
    pipeline = Pipeline([caller, aggregators.user(), llm, player, watcher, aggregators.assistant()])
    task = PipelineTask(
        pipeline,
        params=PipelineParams(audio_in_sample_rate=RATE, audio_out_sample_rate=RATE),
    )
    runner = PipelineRunner(handle_sigint=False)
    driver = asyncio.get_running_loop().create_task(
        script(caller, watcher, task, lines, cert is not None)
    )
    await runner.run(task)
    driver.cancel()


if __name__ == "__main__":
    cert = sys.argv[3] if len(sys.argv) > 3 else None
    asyncio.run(asyncio.wait_for(main(sys.argv[1], Path(sys.argv[2]), cert), 120))
