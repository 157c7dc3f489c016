"""``python -m bench.hotpath``: CPU of the two per-frame paths of a speaking session, alone.

Why: on a shared machine a density point moves with the neighbours' load (a starved caller
catches up in bursts, with fewer wake-ups), but the CPU time of a fixed amount of work does
not move much. Two measures, each a fixed workload in this process (process CPU time):

* ``input``: caller frames into the provider — 20 OpenAI sessions against `vocalis sim-server`
  (its own process, not billed), one 20 ms frame per session every 5 ms (4x real time, so the
  loop goes idle between rounds as it does live): CPU µs per frame (`append_audio` → socket).
* ``receive``: 20 OpenAI sessions against the sim speaking at 4x real time, back to back:
  CPU ms per received audio-second (socket → JSON → base64 → core → router → consumer).
* ``push``: the whole caller input path of a real session — 20 full `AgentSession`s
  (`bench.agents.VocalisAgent`: memory transport, runtime, OpenAI client) against the sim, each
  pushed a 20 ms frame every 5 ms (4x real time), no reply requested: CPU µs per frame from
  the transport push to the socket write (source, timeline, provider append, the session's
  idle tasks included). The caller's line is digital silence (held in 200 ms appends).
* ``push-noise``: the same with the caller's line at about -40 dBFS of noise (the
  ``bench.continuous --line noise`` frames: above the quiet threshold, 40 ms appends).
* ``appends``: the provider client's append batching alone (`InputAppends`, no socket, no
  loop) over the same two lines: CPU µs per frame of the level check, quiet batching and the
  append text (best of 5; steady on a busy machine, unlike the socket measures).
* ``source``: 100 in-memory caller sources, a frame each every 5 ms: CPU µs per frame from
  the push to the consumer, iterated by a task (``frames()``) vs forwarded (``deliver()``).
* ``caller``: the density harness's own simulated callers, 100 sessions whose ``feed`` only
  counts, at 4x real time: CPU µs per caller frame with a task per session (the old harness)
  and with the one `CallerFeeder` per process (what is billed to the agent either way).
* ``sink``: 100 real-time `ClockedAudioSink`s playing at once for 4 s: CPU ms per playing
  sink-second (the device timer and the frame bookkeeping), with a frame callback (a device
  fed every frame) and without one (``lazy_ms_per_sink_second``: nothing is handed out per
  frame, so positions and segment ends are all that is kept).
* ``follow``: 100 `TranscriptSync`s releasing the words of a speaking session's two messages
  (the 1 s and the 9 s reply) as their segments play, at 4x real time: CPU µs per followed
  audio-second (the transcript follow loop and the heard-word arithmetic, no audio device).
* ``turnaround``: full sessions speaking one short reply after another: the fixed CPU µs per
  response boundary, separated from the audio's share (`bench/turnaround.py`).
* ``gemini``: the Gemini Live client's receive core and caller send path alone, no socket
  (CPU µs per received audio-second and per caller frame, `bench/gemini_path.py`).
* ``gemini-receive``: ``receive`` through the Gemini Live client and sim (its websockets
  socket included): CPU ms per received audio-second.
* ``memory``: not CPU — the Python heap 10 sessions keep (KB per session, idle and speaking;
  tasks per idle session; small objects vs large blocks, against the wire-only client) and
  the cyclic garbage each response leaves (`bench/session_memory.py`).

Compare builds by running it in each checkout, alternating; ``--rounds`` repeats both.
Output: ``bench/results/hotpath.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from bench.common import (
    API_KEY,
    CONTINUOUS_RESPONSE,
    FRAME_MS,
    RATE,
    REPO,
    RESULTS,
    log,
    machine,
    run_on,
    sim_process,
    write_json,
    write_scenario,
)
from bench.gemini_path import gemini_path
from bench.session_memory import session_memory
from bench.turnaround import turnaround_path
from vocalis.audio.frame import AudioFrame
from vocalis.providers.base import RealtimeModel, RealtimeSession, SessionOptions
from vocalis.providers.gemini import GeminiRealtimeModel
from vocalis.providers.openai import OpenAIRealtimeModel, OpenAIRealtimeSession
from vocalis.providers.wsclient import resolve_backend
from vocalis.runtime.transcript import TranscriptSync
from vocalis.transports.base import OutputSegment, PlayoutStatus
from vocalis.transports.clocked import ClockedAudioSink
from vocalis.transports.memory import MemoryAudioSource, MemoryTextSink
from vocalis.utils.clock import MonotonicClock

if TYPE_CHECKING:
    from bench.density import LineKind


async def input_path(sessions: int = 20, rounds: int = 1500, **model_kwargs: Any) -> float:
    """CPU µs per caller frame from `append_audio` to the socket."""
    scenario = write_scenario(REPO / "out" / "bench" / "hotpath.json", [["Okay."]])
    async with sim_process(scenario, pace=2.0) as sim:
        model = OpenAIRealtimeModel(base_url=sim.base_url, api_key=API_KEY, **model_kwargs)
        options = SessionOptions(output_modalities=("text",))
        conns = [await model.connect(options) for _ in range(sessions)]
        frame = np.zeros(480, dtype=np.int16)
        cpu = 0.0
        for measured in (False, True):  # warm-up, then the measured rounds
            cpu0 = time.process_time()
            for _ in range(rounds if measured else 100):
                for conn in conns:
                    conn.append_audio(frame)
                await asyncio.sleep(0.005)
            cpu = time.process_time() - cpu0
        # A dead socket drops appends silently: the figure would be the cost of nothing.
        _require(all(conn.connected for conn in conns), "input: a session lost its socket")
        for conn in conns:
            await conn.aclose()
    return cpu / (rounds * sessions) * 1e6


def _require(ok: bool, what: str) -> None:
    """A measure whose workload did not run as described must not pass as a figure."""
    if not ok:
        raise RuntimeError(f"hotpath {what}")


async def push_path(sessions: int = 20, rounds: int = 1500, line: LineKind = "silence") -> float:
    """CPU µs per caller frame from `MemoryTransport`'s push to the provider socket, in
    full sessions (what a deployment pays per caller frame, end to end). ``line`` is what the
    caller's line carries, as in `bench.continuous --line`: digital silence (quiet batching
    sends it in 200 ms appends) or noise at about -40 dBFS (every frame above the quiet
    threshold: 40 ms appends)."""
    from bench.agents import VocalisAgent  # the full runtime; only this measure needs it
    from bench.density import line_frames

    scenario = write_scenario(REPO / "out" / "bench" / "hotpath_push.json", [["Okay."]])
    async with sim_process(scenario, pace=2.0) as sim:
        agents = [VocalisAgent() for _ in range(sessions)]
        for agent in agents:
            await agent.start(sim.base_url)
        frames = [AudioFrame(samples, RATE) for samples in line_frames(FRAME_MS, line)]
        cpu = 0.0
        for measured in (False, True):  # warm-up, then the measured rounds
            cpu0 = time.process_time()
            for k in range(rounds if measured else 100):
                frame = frames[k % len(frames)]
                for agent in agents:
                    agent.transport.source.push(frame)
                await asyncio.sleep(0.005)
            cpu = time.process_time() - cpu0
        providers = [agent.session.provider if agent.session else None for agent in agents]
        connected = [isinstance(p, OpenAIRealtimeSession) and p.connected for p in providers]
        _require(all(connected), f"push ({line}): a session lost its socket")
        for agent in agents:
            await agent.aclose()
    return cpu / (rounds * sessions) * 1e6


async def receive_path(
    sessions: int = 20, seconds: float = 6.0, protocol: Literal["openai", "gemini"] = "openai"
) -> float:
    """CPU ms per received audio-second: provider audio deltas from the socket to a
    forwarded consumer (frame parse, JSON, base64, core, router) — the output half of a
    speaking session's wire work. The sim speaks at 4x real time, back to back.
    ``protocol="gemini"``: the same through the Gemini Live client and sim."""
    turns = int(seconds * 4 / 9) + 4
    scenario = write_scenario(
        REPO / "out" / "bench" / "hotpath_rx.json", [list(CONTINUOUS_RESPONSE)], repeat=turns
    )
    async with sim_process(scenario, pace=4.0, extra_args=["--protocol", protocol]) as sim:
        model: RealtimeModel = (
            GeminiRealtimeModel(base_url=sim.base_url, api_key=API_KEY)
            if protocol == "gemini"
            else OpenAIRealtimeModel(base_url=sim.base_url, api_key=API_KEY)
        )
        conns = [await model.connect(SessionOptions(turn_detection=None)) for _ in range(sessions)]
        samples = [0]

        def count(chunk: np.ndarray) -> None:
            samples[0] += chunk.shape[0]

        async def speak(conn: RealtimeSession) -> None:
            while True:
                generation = await conn.generate_reply()
                async for message in generation.messages:
                    message.audio.forward_to(count)
                    message.text.forward_to(lambda _text: None)
                await generation.done

        tasks = [asyncio.create_task(speak(conn)) for conn in conns]
        await asyncio.sleep(1.0)
        cpu0, got0 = time.process_time(), samples[0]
        await asyncio.sleep(seconds)
        cpu, got = time.process_time() - cpu0, samples[0] - got0
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for conn in conns:
            await conn.aclose()
    if not got:  # a broken receive path must not pass as an enormous (or any) figure
        raise RuntimeError("hotpath receive: no audio arrived in the measured window")
    return cpu * 1000 / (got / 24000)


async def source_path(sources: int = 100, rounds: int = 1500) -> dict[str, float]:
    """CPU µs per caller frame from a transport's push to its consumer, both ways of
    consuming: a task iterating `frames()` (a wake-up per frame) and `deliver()` (called
    inside the push). The consumer only counts: what is left is the hand-over itself."""
    frame = AudioFrame(np.zeros(480, dtype=np.int16), 24000)
    result: dict[str, float] = {}
    for path in ("frames", "deliver"):
        counted = [0]

        def count(_frame: AudioFrame, counted: list[int] = counted) -> None:
            counted[0] += 1

        async def consume(source: MemoryAudioSource, path: str = path) -> None:
            if path == "deliver":
                await source.deliver(24000, count)
            else:
                async for item in source.frames(24000):
                    count(item)

        feeds = [MemoryAudioSource(24000) for _ in range(sources)]
        tasks = [asyncio.create_task(consume(source)) for source in feeds]
        await asyncio.sleep(0.01)
        cpu0 = time.process_time()
        for _ in range(rounds):
            for source in feeds:
                source.push(frame)
            await asyncio.sleep(0.005)
        cpu = time.process_time() - cpu0
        for source in feeds:
            source.close()
        await asyncio.gather(*tasks)
        assert counted[0] == rounds * sources
        result[f"source_{path}_us_per_frame"] = cpu / (rounds * sources) * 1e6
    return result


class _CountingClient:
    """A density client whose caller audio only counts: what is left is the harness."""

    def __init__(self) -> None:
        self.frames = 0

    async def feed(self, frame: object) -> None:
        self.frames += 1

    def feed_now(self, frame: object) -> None:
        self.frames += 1


def appends_path(frames: int = 20000, reps: int = 5) -> dict[str, float]:
    """CPU µs per caller frame of the provider client's append batching alone (no socket, no
    loop): `InputAppends.add` over the continuous bench's caller lines, silent and -40 dBFS
    noise — the level check, quiet batching and the append text. Best of ``reps`` runs: the
    piece of `push` that per-frame micro-work changes, without the socket's noise."""
    from bench.density import line_frames
    from vocalis.providers.openai.appends import InputAppends
    from vocalis.providers.openai.formats import AUDIO_FORMATS

    encode = AUDIO_FORMATS["pcm16"].encode_b64
    row: dict[str, float] = {}
    for line in ("silence", "noise"):
        pieces = line_frames(FRAME_MS, line)
        best = float("inf")
        for _ in range(reps):
            appends = InputAppends(encode, RATE * 40 // 1000, RATE * 200 // 1000)
            cpu0 = time.process_time()
            for k in range(frames):
                appends.add(pieces[k % len(pieces)])
            best = min(best, time.process_time() - cpu0)
        row[f"appends_{line}_us_per_frame"] = best / frames * 1e6
    return row


async def caller_path(sessions: int = 100, seconds: float = 3.0) -> dict[str, float]:
    """CPU µs per caller frame of the density harness's callers: a task per session vs the
    one paced feeder (both at 4x real time: 5 ms frames)."""
    from bench.density import CallerFeeder, _caller

    frames = [np.zeros(480, dtype=np.int16)]
    frame_s = 0.005
    result: dict[str, float] = {}
    for mode in ("task", "feeder"):
        clients = [_CountingClient() for _ in range(sessions)]
        cpu0 = time.process_time()
        if mode == "feeder":
            feeder = CallerFeeder([c.feed_now for c in clients], frames, [0] * sessions, frame_s)
            feeder.start()
            await asyncio.sleep(seconds)
            feeder.stop()
        else:
            tasks = [asyncio.create_task(_caller(c, frames, 0, 5)) for c in clients]
            await asyncio.sleep(seconds)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        cpu = time.process_time() - cpu0
        fed = sum(c.frames for c in clients)
        assert fed >= sessions, "the callers fed nothing"
        result[f"caller_{mode}_us_per_frame"] = cpu / fed * 1e6
    return result


async def sink_path(
    sinks: int = 100, seconds: float = 4.0, *, device: bool = True
) -> dict[str, float]:
    """CPU ms per playing sink-second of real-time clocked sinks (and their underruns);
    `device`: every frame goes to a callback (else the sink plays without handing out)."""
    playing: set[str] = set()

    def on_frame(piece: np.ndarray, segment_id: str, at: float) -> None:
        playing.add(segment_id)

    callback = on_frame if device else None
    devices = [
        ClockedAudioSink(MonotonicClock(), 24000, 20, on_frame=callback) for _ in range(sinks)
    ]
    audio = np.ones(24000 * int(seconds + 4), dtype=np.int16)
    for k, sink in enumerate(devices):
        segment = sink.begin_segment(f"s{k}", 24000)
        for i in range(0, audio.shape[0], 960):
            segment.push(audio[i : i + 960])
        segment.end()
        await asyncio.sleep(0.0002)  # sinks start at different phases, as calls do
    await asyncio.sleep(0.5)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    underruns = sum(s.underruns for s in devices)
    if not device:  # nothing is handed out: a sink played if its frames are counted
        playing = {f"s{k}" for k, sink in enumerate(devices) if sink.frames_played}
    _require(len(playing) == sinks, f"sink: {sinks - len(playing)} of {sinks} sinks played nothing")
    for sink in devices:
        await sink.aclose()
    return {"ms_per_sink_second": cpu * 1000 / (sinks * wall), "underruns": underruns}


class _ScaledClock:
    """The real clock running `speed` times faster (a session's time at 4x real time)."""

    def __init__(self, speed: float) -> None:
        self.speed = speed

    def now(self) -> float:
        return time.monotonic() * self.speed

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.speed)

    async def sleep_until(self, deadline: float) -> None:
        await self.sleep(deadline - self.now())


class _PlayingSegment(OutputSegment):
    """A segment that plays `duration_ms` on `clock` from its creation, with no device behind
    it: what is measured is the follow loop, not a sink's frame bookkeeping."""

    def __init__(self, segment_id: str, clock: _ScaledClock, duration_ms: float) -> None:
        super().__init__(segment_id, 24000)
        self._clock = clock
        self._duration_ms = duration_ms
        self._mark_started(clock.now())

    def push(self, samples: np.ndarray) -> None:
        self._accept(samples)

    def end(self) -> None:
        self._ended = True

    @property
    def played_ms(self) -> float:
        return min((self._clock.now() - (self._started_at or 0.0)) * 1000.0, self._duration_ms)

    def conclude(self) -> None:
        self._conclude(PlayoutStatus.FULL, self._duration_ms, self._clock.now())


async def follow_path(followers: int = 100, speed: float = 4.0) -> float:
    """CPU µs per followed audio-second of `followers` sessions speaking both replies of the
    continuous load; the transcript arrives ahead of the audio, word by word (as providers
    send it), and every reply is checked to have released exactly its text."""
    clock = _ScaledClock(speed)
    texts = MemoryTextSink()
    loop = asyncio.get_running_loop()
    durations = [len(text) * 55.0 for text in CONTINUOUS_RESPONSE]

    async def speak(k: int) -> None:
        for j, (text, duration_ms) in enumerate(zip(CONTINUOUS_RESPONSE, durations, strict=True)):
            segment = _PlayingSegment(f"s{k}m{j}", clock, duration_ms)
            sync = TranscriptSync(segment.id, texts, clock)
            sync.audio_ms, sync.audio_complete = duration_ms, True
            task = asyncio.create_task(sync.follow(segment))
            words = text.split(" ")
            for i, word in enumerate(words):
                sync.add_text(word if i == len(words) - 1 else word + " ")
            sync.text_complete = True
            loop.call_later(duration_ms / 1000.0 / speed, segment.conclude)
            sync.finish(await segment.wait_for_playout())
            await task

    cpu0 = time.process_time()
    tasks = []
    for k in range(followers):
        tasks.append(asyncio.create_task(speak(k)))
        await asyncio.sleep(0.0005)  # sessions start at different phases, as calls do
    await asyncio.gather(*tasks)
    cpu = time.process_time() - cpu0
    for k in range(followers):
        for j, text in enumerate(CONTINUOUS_RESPONSE):
            assert texts.agent_texts[f"s{k}m{j}"] == text
    return cpu / (followers * sum(durations) / 1000.0) * 1e6


MEASURES = (
    "input",
    "push",
    "push-noise",
    "appends",
    "receive",
    "source",
    "caller",
    "sink",
    "follow",
    "turnaround",
    "gemini",
    "gemini-receive",
    "memory",
)


async def _round(only: tuple[str, ...]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    if "input" in only:
        row["input_us_per_frame"] = round(await input_path(), 2)
    if "push" in only:
        row["push_us_per_frame"] = round(await push_path(), 2)
    if "push-noise" in only:
        row["push_noise_us_per_frame"] = round(await push_path(line="noise"), 2)
    if "receive" in only:
        row["receive_ms_per_audio_s"] = round(await receive_path(), 3)
    if "source" in only:
        row.update({k: round(v, 2) for k, v in (await source_path()).items()})
    if "appends" in only:
        row.update({k: round(v, 3) for k, v in appends_path().items()})
    if "caller" in only:
        row.update({k: round(v, 2) for k, v in (await caller_path()).items()})
    if "sink" in only:
        row.update({k: round(v, 4) for k, v in (await sink_path()).items()})
        lazy = await sink_path(device=False)
        row["lazy_ms_per_sink_second"] = round(lazy["ms_per_sink_second"], 4)
    if "follow" in only:
        row["follow_us_per_audio_s"] = round(await follow_path(), 1)
    if "turnaround" in only:
        row.update({k: round(v, 1) for k, v in (await turnaround_path()).items()})
    if "gemini" in only:
        row.update({k: round(v, 2) for k, v in gemini_path().items()})
    if "gemini-receive" in only:
        row["gemini_receive_ms_per_audio_s"] = round(await receive_path(protocol="gemini"), 3)
    if "memory" in only:
        row.update({k: round(v, 2) for k, v in (await session_memory()).items()})
    return row


async def run(rounds: int, only: tuple[str, ...] = MEASURES) -> dict[str, Any]:
    rows = []
    for _ in range(rounds):
        row = await _round(only)
        log(f"hotpath: {row}")
        rows.append(row)
    return {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine(),
        # What carried the work: the provider socket's library and the event loop.
        "websocket": resolve_backend(),
        "loop": type(asyncio.get_running_loop()).__module__.split(".")[0],
        "rounds": rows,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hotpath")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default=",".join(MEASURES), help="comma list of measures")
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    parser.add_argument("--results", help="results directory (default bench/results)")
    args = parser.parse_args(argv)
    data = run_on(args.loop, run(args.rounds, tuple(args.only.split(","))))
    out = write_json("hotpath", data, Path(args.results) if args.results else RESULTS)
    log(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
