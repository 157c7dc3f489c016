"""The two clients a benchmark can drive, behind one small interface.

* `VocalisAgent` — the product: a full `AgentSession` (OpenAI GA client, runtime, heard ledger,
  transcript sync) on a `MemoryTransport` whose sink is the real-time `ClockedAudioSink`.
* `BareClient` — the baseline floor: what *any* Python client must do for the same traffic and
  nothing more — one WebSocket, base64 + string concat per input append, `json.loads` of every
  server event, base64 decode of audio deltas into a queue, and a 20 ms player tick that pops
  one frame (counting underruns the same way). No history, no ledger, no truncation.

The ratio vocalis / bare is the cost of everything the framework adds on top of the wire.
Both take caller audio through `feed_now(frame)` (synchronous, as a socket callback would hand
it over), called by the worker's one paced feeder (`bench.density.CallerFeeder`), or through
`feed(frame)` awaited by a caller task per session (the old harness, ``caller="task"``).

Same device and wire work for both (``caller="feeder"``): the bare client's player rides the
same per-process `SharedTicker` as vocalis's `ClockedAudioSink`, and it sends caller audio in
appends of the same size as vocalis's default (`DEFAULT_INPUT_CHUNK_MS`). With
``caller="task"`` it keeps the old harness's per-session player task and one append per frame
(more wake-ups and sends than vocalis: a baseline that cost more than it had to).
"""

from __future__ import annotations

import asyncio
import binascii
import contextlib
import json
import logging
import time
from collections import deque
from typing import Protocol

import numpy as np

from bench.common import (
    API_KEY,
    DEVICE_BUFFER_S,
    FRAME_MS,
    FRAME_SAMPLES,
    RATE,
    SIM_AUTH,
    CallerMode,
    GapCounter,
)
from bench.hooks import InstrumentedSink, Recorder, install_raw_stamp
from vocalis.audio.frame import AudioFrame
from vocalis.providers.openai.model import DEFAULT_INPUT_CHUNK_MS
from vocalis.providers.openai.realtime import OpenAIRealtimeModel
from vocalis.providers.wsclient import ProviderSocket, SocketBackend, open_socket
from vocalis.runtime.agent import Agent
from vocalis.runtime.events import Interrupted, TurnMetrics
from vocalis.runtime.session import AgentSession
from vocalis.transports.base import PlayoutResult
from vocalis.transports.memory import MemoryTextSink, MemoryTransport
from vocalis.transports.ticker import SharedTicker, shared_ticker
from vocalis.utils.clock import Clock, MonotonicClock

INSTRUCTIONS = "You are the vocalis benchmark agent."


class Client(Protocol):
    done_at: list[float]

    async def start(self, base_url: str) -> None: ...

    async def feed(self, frame: np.ndarray) -> None: ...

    def feed_now(self, frame: np.ndarray) -> None:
        """Caller audio handed over synchronously (from the feeder's timer callback)."""

    def keep_speaking(self) -> None:
        """Continuous-speech load: request the next response whenever one has played."""

    @property
    def underruns(self) -> int: ...

    @property
    def device_gaps(self) -> int: ...

    @property
    def device_frames(self) -> int: ...

    @property
    def responses(self) -> int: ...

    @property
    def interruptions(self) -> int: ...

    async def aclose(self) -> None: ...


class _Device:
    """The simulated playback device's counters (`GapCounter`), the same for both clients."""

    gaps: GapCounter
    # perf_counter() of every completed response: shows whether sessions run in lockstep.
    done_at: list[float]

    @property
    def device_gaps(self) -> int:
        return self.gaps.gaps

    @property
    def device_frames(self) -> int:
        return self.gaps.frames


class _ShownNowhere(MemoryTextSink):
    """The words and states a deployment shows the caller, shown nowhere and not kept.

    Why: `MemoryTransport`'s text sink is a test recorder: it keeps every text event of the
    call (~10 a second while the agent speaks), memory a deployment's text sink (a page or a
    phone line) does not hold, and the bare client has no equivalent of. Measured as the
    product's, it grew every speaking session's memory for as long as the call lasted.
    """

    def agent_text(self, segment_id: str, text: str) -> None:
        pass

    def agent_segment_ended(self, segment_id: str, result: PlayoutResult, heard_text: str) -> None:
        pass

    def user_transcript(self, item_id: str, text: str, final: bool) -> None:
        pass

    def agent_state(self, state: str) -> None:
        pass

    def notice(self, message: str) -> None:
        pass


class VocalisAgent(_Device):
    """A full `AgentSession` as a deployment would run it (one per caller)."""

    def __init__(
        self,
        clock: Clock | None = None,
        *,
        model_clock: Clock | None = None,
        instrument: bool = False,
        input_chunk_ms: int | None = None,
    ) -> None:
        self.clock = clock or MonotonicClock()
        self._input_chunk_ms = input_chunk_ms
        self._model_clock = model_clock
        # The simulated device: one chunk of DEVICE_BUFFER_S; a frame handed over later than
        # that after its tick is a gap the listener hears.
        self.gaps = GapCounter(self.clock.now, DEVICE_BUFFER_S)
        self.done_at = []
        self.transport = MemoryTransport(
            self.clock, RATE, output_rate=RATE, frame_ms=FRAME_MS, on_frame=self.gaps.on_frame
        )
        self.transport.text = _ShownNowhere()
        self.recorder: Recorder | None = None
        if instrument:
            self.recorder = Recorder()
            self.transport.sink = InstrumentedSink(
                self.clock, self.recorder, device=self.gaps.on_frame
            )
        self.session: AgentSession | None = None
        self._responses = 0
        self._interruptions = 0
        self.metrics: list[TurnMetrics] = []

    async def start(self, base_url: str) -> None:
        model = OpenAIRealtimeModel(
            base_url=base_url,
            api_key=API_KEY,
            clock=self._model_clock or self.clock,
            input_chunk_ms=(
                DEFAULT_INPUT_CHUNK_MS if self._input_chunk_ms is None else self._input_chunk_ms
            ),
        )
        self.session = AgentSession(model, self.transport, clock=self.clock)
        self.session.on(TurnMetrics, self._on_metrics)
        self.session.on(Interrupted, self._on_interrupted)
        await self.session.start(Agent(INSTRUCTIONS))
        if self.recorder is not None:
            provider = self.session.provider
            self.recorder.wrap_core(provider._core, install_raw_stamp())  # type: ignore[union-attr]

    def _on_metrics(self, event: TurnMetrics) -> None:
        self._responses += 1
        self.done_at.append(time.perf_counter())
        self.metrics.append(event)

    def _on_interrupted(self, event: Interrupted) -> None:
        self._interruptions += 1

    async def feed(self, frame: np.ndarray) -> None:
        self.transport.source.push(AudioFrame(frame, RATE))

    def feed_now(self, frame: np.ndarray) -> None:
        self.transport.source.push(AudioFrame(frame, RATE))

    def keep_speaking(self) -> None:
        session = self.session
        assert session is not None

        def next_reply(_event: TurnMetrics) -> None:
            session.generate_reply()

        session.on(TurnMetrics, next_reply)
        session.generate_reply()

    @property
    def sink_underruns(self) -> int:
        return self.transport.sink.underruns

    @property
    def underruns(self) -> int:
        return self.transport.sink.underruns

    @property
    def responses(self) -> int:
        return self._responses

    @property
    def interruptions(self) -> int:
        return self._interruptions

    async def aclose(self) -> None:
        if self.recorder is not None:
            self.recorder.active = False  # the closing clear is not a barge-in
        if self.session is not None:
            await self.session.aclose()
        await self.transport.aclose()


_APPEND_PREFIX = '{"type":"input_audio_buffer.append","audio":"'
_APPEND_SUFFIX = '"}'
_RESPONSE_CREATE = '{"type":"response.create"}'


class BareClient(_Device):
    """The floor: wire I/O, JSON, base64 and a paced player tick — nothing else.

    On `websockets` (mode ``bare``: what any Python client pays) or picows (``bare-picows``:
    the floor of the same wire library vocalis uses with the `fast` extra), through the
    provider's socket adapter (`vocalis.providers.wsclient`) so both are driven alike.
    """

    def __init__(
        self,
        backend: SocketBackend = "websockets",
        *,
        caller: CallerMode = "task",
        input_chunk_ms: int | None = None,
    ) -> None:
        self._backend: SocketBackend = backend
        self._caller: CallerMode = caller
        self._ws: ProviderSocket | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._queue: deque[np.ndarray] = deque()
        self._queued = 0
        self._offset = 0
        self._playing = False
        self._response_done = False
        self._underruns = 0
        self._responses = 0
        self._interruptions = 0
        self._wake = asyncio.Event()
        self._first_pending = False
        self._continuous = False
        # feeder mode: caller audio batched like vocalis's appends, sent by a synchronous
        # write (a send task only when the socket's buffer is full: flow control).
        chunk_ms = DEFAULT_INPUT_CHUNK_MS if input_chunk_ms is None else input_chunk_ms
        self._chunk_samples = RATE * chunk_ms // 1000
        self._pending: list[np.ndarray] = []
        self._pending_samples = 0
        self._backlog: deque[str] = deque()
        # feeder mode: the device's timeline on the shared ticker.
        self._ticker: SharedTicker | None = None
        self._anchor = 0.0
        self._k = 0
        self.gaps = GapCounter(time.perf_counter, DEVICE_BUFFER_S)
        self.done_at = []
        # Same two latencies as the vocalis hooks, measured in the bare receive path (ms).
        self.push_latency_ms: list[float] = []
        self.clear_latency_ms: list[float] = []

    async def start(self, base_url: str) -> None:
        self._ws = await open_socket(
            self._backend,
            f"{base_url}/realtime?model=gpt-realtime",
            SIM_AUTH,
            open_timeout=30,
            max_size=16 * 2**20,
            logger=logging.getLogger("bench.bare"),
        )
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._recv())]
        if self._caller == "feeder":
            self._ticker = shared_ticker(FRAME_MS / 1000.0)
        else:
            self._tasks.append(loop.create_task(self._player()))

    async def feed(self, frame: np.ndarray) -> None:
        ws = self._ws
        if ws is None:
            return
        encoded = binascii.b2a_base64(frame.data.cast("B"), newline=False).decode("ascii")
        await ws.send(_APPEND_PREFIX + encoded + _APPEND_SUFFIX)

    def feed_now(self, frame: np.ndarray) -> None:
        if self._ws is None:
            return
        self._pending.append(frame)
        self._pending_samples += frame.shape[0]
        if self._pending_samples < self._chunk_samples:
            return
        pending = self._pending
        audio = pending[0] if len(pending) == 1 else np.concatenate(pending)
        self._pending = []
        self._pending_samples = 0
        encoded = binascii.b2a_base64(audio.data.cast("B"), newline=False).decode("ascii")
        self._write(_APPEND_PREFIX + encoded + _APPEND_SUFFIX)

    def _write(self, message: str) -> None:
        """Write now, or behind what is already waiting for the socket's buffer to drain."""
        assert self._ws is not None
        try:
            if not self._backlog and self._ws.write(message):
                return
        except Exception:  # a closed socket: the session is over, as `feed` would find
            return
        self._backlog.append(message)
        if len(self._backlog) == 1:
            self._tasks.append(asyncio.get_running_loop().create_task(self._drain()))

    async def _drain(self) -> None:
        assert self._ws is not None
        with contextlib.suppress(Exception):
            while self._backlog:
                await self._ws.send(self._backlog[0])
                self._backlog.popleft()

    def keep_speaking(self) -> None:
        self._continuous = True
        self._request_reply()

    def _request_reply(self) -> None:
        if self._ws is not None:
            self._tasks.append(asyncio.get_running_loop().create_task(self._send_create()))

    async def _send_create(self) -> None:
        assert self._ws is not None
        with contextlib.suppress(Exception):
            await self._ws.send(_RESPONSE_CREATE)

    async def _recv(self) -> None:
        assert self._ws is not None
        with contextlib.suppress(Exception):
            await self._ws.run(self._on_message)

    def _on_message(self, raw: str | bytes) -> None:
        t_raw = time.perf_counter()
        event = json.loads(raw)
        kind = event["type"]
        if kind == "response.output_audio.delta":
            audio = np.frombuffer(binascii.a2b_base64(event["delta"]), dtype="<i2")
            self._queue.append(audio)
            self._queued += audio.shape[0]
            self._audio_ready()
            if self._first_pending:
                self._first_pending = False
                self.push_latency_ms.append((time.perf_counter() - t_raw) * 1000.0)
        elif kind == "input_audio_buffer.speech_started":
            busy = bool(self._queued or self._playing)
            self._queue.clear()
            self._queued = 0
            self._offset = 0
            self._playing = False
            if busy:
                self._interruptions += 1
                self.clear_latency_ms.append((time.perf_counter() - t_raw) * 1000.0)
        elif kind == "response.output_item.added":
            self._first_pending = True
        elif kind == "response.created":
            self._response_done = False
        elif kind == "response.done":
            self._responses += 1
            self.done_at.append(time.perf_counter())
            self._response_done = True
            self._audio_ready()

    def _audio_ready(self) -> None:
        ticker = self._ticker
        if ticker is None:
            self._wake.set()
        elif not self._playing and self._queued:
            # As `ClockedAudioSink`: a fresh device timeline from now, the first frame on the
            # next loop turn, the rest on the shared ticks.
            self._playing = True
            self._anchor = time.monotonic()
            self._k = 0
            asyncio.get_running_loop().call_soon(self._first_tick)
            ticker.add(self)

    def _first_tick(self) -> None:
        self.on_shared_tick(time.monotonic())

    def on_shared_tick(self, now: float) -> bool:
        """`SharedTicker` step: play every frame due by `now`; False once idle."""
        frame_s = FRAME_MS / 1000.0
        while self._playing and self._anchor + self._k * frame_s <= now:
            due = self._anchor + self._k * frame_s
            if not self._play_frame():
                self._playing = False
                if self._continuous and self._response_done:
                    self._request_reply()
                break
            self.gaps.late(now - due)
            self._k += 1
        return self._playing

    def _play_frame(self) -> bool:
        """Pop one frame; False when the response has played out (the device goes idle)."""
        need = FRAME_SAMPLES
        while need and self._queue:
            head = self._queue[0]
            take = min(need, head.shape[0] - self._offset)
            self._offset += take
            need -= take
            self._queued -= take
            if self._offset == head.shape[0]:
                self._queue.popleft()
                self._offset = 0
        if need:
            if self._response_done and not self._queued:
                return need < FRAME_SAMPLES
            self._underruns += 1
        return True

    async def _player(self) -> None:
        loop = asyncio.get_running_loop()
        frame_s = FRAME_MS / 1000.0
        late = self.gaps.late
        while True:
            if not self._queued:
                if self._playing and self._continuous and self._response_done:
                    self._request_reply()
                self._playing = False
                self._wake.clear()
                await self._wake.wait()
                continue
            start = loop.time()
            k = 0
            self._playing = True
            while self._playing:
                if not self._play_frame():
                    break
                late(loop.time() - (start + k * frame_s))
                k += 1
                await asyncio.sleep(max(0.0, start + k * frame_s - loop.time()))

    @property
    def underruns(self) -> int:
        return self._underruns

    @property
    def responses(self) -> int:
        return self._responses

    @property
    def interruptions(self) -> int:
        return self._interruptions

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._ws is not None:
            await self._ws.close()


def make_client(
    mode: str,
    *,
    instrument: bool = False,
    input_chunk_ms: int | None = None,
    caller: CallerMode = "task",
) -> Client:
    if mode == "vocalis":
        return VocalisAgent(instrument=instrument, input_chunk_ms=input_chunk_ms)
    if mode == "bare":
        return BareClient("websockets", caller=caller, input_chunk_ms=input_chunk_ms)
    if mode == "bare-picows":
        return BareClient("picows", caller=caller, input_chunk_ms=input_chunk_ms)
    raise ValueError(f"unknown client mode {mode!r}")
