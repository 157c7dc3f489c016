"""Shared benchmark plumbing: statistics, the event-loop lag probe, process CPU/RSS readers,
the sim-server child process, the caller's speech and the scripted scenario.

Why a separate process for the sim: the server does real work per frame (JSON, base64, VAD);
in the agent's process it would be billed to the agent and would steal its event loop. It still
shares the machine's cores, so its CPU is measured and reported next to the agent's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
from websockets.asyncio.client import connect

from vocalis.utils.event_loop import LoopKind

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
RATE = 24000
FRAME_MS = 20
FRAME_SAMPLES = RATE * FRAME_MS // 1000
API_KEY = "sk-bench-local"  # the sim accepts any key; never a real one
# What every bench client sends the sim to authenticate (vocalis' own clients send their key).
SIM_AUTH = {"Authorization": f"Bearer {API_KEY}"}
# The simulated playback device of the continuous-speech load holds one 40 ms chunk: a frame
# handed over more than this after its due time left the device without audio (a gap).
DEVICE_BUFFER_S = 0.040
# How the harness drives a client: one paced feeder per process and the shared player tick
# ("feeder"), or a caller task per session (and the bare client's own player task: "task").
CallerMode = Literal["feeder", "task"]

# The scripted conversation: one short caller line, a two-message answer (preamble + answer).
CALLER_LINE = "Where is my order?"
PREAMBLE = "Let me check."
ANSWER = "Your order shipped yesterday and arrives on Friday."
# Longer multi-message responses for barge-in trials (three messages, ~8 s of audio).
# The continuous-speech load (issue #17): every response is a ~1 s and a ~9 s message, back
# to back, requested again as soon as one has played.
CONTINUOUS_RESPONSE = (
    "Let me check that.",
    "Your order shipped yesterday from our main warehouse and it is on the truck now, so it "
    "should arrive on Friday afternoon; you will get a text message with the tracking link.",
)
LONG_RESPONSE = (
    "Sure, I can help with that right away.",
    "I found your order from last week in our system.",
    "It shipped yesterday from our warehouse and should arrive on Friday afternoon.",
)


def connect_sim(url: str, **options: Any) -> connect:
    """A websockets client connection to the sim, authenticated as every bench client is
    (`options`: websockets' own, e.g. ``max_size``, ``ssl``, ``compression``)."""
    return connect(url, additional_headers=SIM_AUTH, **options)


# --------------------------------------------------------------------------- statistics


def stats(values: Iterable[float], *, digits: int = 3) -> dict[str, float | int]:
    """p50/p90/p99/max/mean of ``values`` (empty -> zeros with n=0)."""
    arr = np.asarray(list(values), dtype=np.float64)
    if arr.size == 0:
        return {"n": 0, "p50": 0.0, "p90": 0.0, "p99": 0.0, "max": 0.0, "mean": 0.0}
    return {
        "n": int(arr.size),
        "p50": round(float(np.percentile(arr, 50)), digits),
        "p90": round(float(np.percentile(arr, 90)), digits),
        "p99": round(float(np.percentile(arr, 99)), digits),
        "max": round(float(arr.max()), digits),
        "mean": round(float(arr.mean()), digits),
    }


def ratio(value: float, base: float) -> float | None:
    return round(value / base, 2) if base > 0 else None


# --------------------------------------------------------------------------- process metrics


def rss_bytes(pid: int | str = "self") -> int:
    """Resident set size from ``/proc/<pid>/status`` (VmRSS; psutil is not a dependency)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


_CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu_seconds(pid: int) -> float:
    """user+system CPU seconds of another process (``/proc/<pid>/stat``)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


@contextlib.contextmanager
def bench_server(*argv: str) -> Iterator[tuple[int, int]]:
    """Run ``python -m <argv>`` as the measured server and yield (pid, port) from the port it
    prints on its first line; the CPU benches keep the server in its own process so its
    /proc CPU is its alone. Terminated on exit."""
    proc = subprocess.Popen(
        [sys.executable, "-m", *argv], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        yield proc.pid, int(proc.stdout.readline())
    finally:
        proc.terminate()
        proc.wait(10)


async def server_cpu_window(
    pid: int, calls: int, seconds: float, warmup: float, tasks: Sequence[asyncio.Task[Any]]
) -> dict[str, Any]:
    """The server's CPU and RSS over ``seconds`` once ``warmup`` has passed, then await the
    callers' ``tasks``: one measurement rule for the WebSocket and WebRTC CPU benches, so
    their per-call numbers stay comparable."""
    await asyncio.sleep(warmup)
    cpu0, t0 = proc_cpu_seconds(pid), time.monotonic()
    await asyncio.sleep(seconds)
    cpu1, t1 = proc_cpu_seconds(pid), time.monotonic()
    rss = rss_bytes(pid)
    await asyncio.gather(*tasks)
    window = t1 - t0
    return {
        "calls": calls,
        "window_s": round(window, 2),
        "server_cpu_cores": round((cpu1 - cpu0) / window, 4),
        "server_cpu_ms_per_call_s": round((cpu1 - cpu0) / window / calls * 1000, 3),
        "server_rss_mb": round(rss / 2**20, 1),
    }


T = TypeVar("T")


def run_on(loop: LoopKind, main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` on exactly the loop a bench's ``--loop`` names. Not
    `vocalis.utils.event_loop.run`: that one lets ``VOCALIS_LOOP`` override the choice, and
    the bench passes ``VOCALIS_LOOP`` on to the processes it measures, not to itself."""
    if loop == "uvloop":
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)


CPU_PROBE_LOOPS = 200_000


def cpu_probe_ms() -> float:
    """Milliseconds a fixed pure-Python loop takes on this process' core (best of 3).

    Why: the project machine is a VM whose cores sometimes run much slower (work that takes
    0.5 s took up to 0.95 s minutes later, with its CPU time inflated as much: no steal in
    ``/proc/stat``, the host's contention is invisible to the guest). Every CPU-per-session
    figure moves with it, so a point records this probe next to its figures (11.5 ms on the
    project machine at its usual speed, 2026-12-03).
    """
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        x = 0
        for i in range(CPU_PROBE_LOOPS):
            x += i * i
        best = min(best, time.process_time() - start)
    return round(best * 1000.0, 2)


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent busy since boot (``/proc/stat``): with the agent's and the
    sim's own CPU this shows whether *other* load shared the machine during a measurement."""
    with open("/proc/stat", encoding="ascii") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / _CLK_TCK


async def wait_quiet(
    own_cores: float = 0.0, *, threshold: float = 0.3, max_wait: float = 60.0
) -> float:
    """Wait (up to ``max_wait`` s) until the machine is nearly idle before a measurement.

    Other jobs may share the machine; starting a density point while they run measures them.
    ``own_cores`` is load we expect from our own idle processes. Returns the seconds waited.
    """
    started = time.perf_counter()
    while time.perf_counter() - started < max_wait - 1.0:
        busy0 = machine_busy_seconds()
        t0 = time.perf_counter()
        await asyncio.sleep(1.0)
        cores = (machine_busy_seconds() - busy0) / (time.perf_counter() - t0)
        if cores - own_cores <= threshold:
            break
    return round(time.perf_counter() - started, 1)


class GapCounter:
    """Playback gaps of a simulated device with a buffer of ``buffer_s``.

    ``late(seconds)`` is told how late each frame reached the device; a run of consecutive
    frames later than the buffer is one gap (one audible dropout), however long it lasts.
    """

    def __init__(self, now: Callable[[], float], buffer_s: float) -> None:
        self._now = now
        self._buffer_s = buffer_s
        self._in_gap = False
        self.gaps = 0
        self.late_frames = 0
        self.frames = 0

    def late(self, seconds: float) -> None:
        self.frames += 1
        if seconds > self._buffer_s:
            self.late_frames += 1
            if not self._in_gap:
                self._in_gap = True
                self.gaps += 1
        else:
            self._in_gap = False

    def on_frame(self, piece: Any, segment_id: str, at: float) -> None:
        """`ClockedAudioSink` frame callback: ``at`` is the piece's due time on the clock."""
        self.late(self._now() - at)


class LagProbe:
    """Measures event-loop lag: how late a task that asks to wake every ``interval`` wakes.

    The lag is what every timer in the process suffers at that moment — the sink's player
    ticks, the caller's frames — so its p99 is the density criterion.
    """

    def __init__(self, interval: float = 0.010) -> None:
        self.interval = interval
        self.samples_ms: list[float] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        interval = self.interval
        clock = time.perf_counter
        append = self.samples_ms.append
        while True:
            due = clock() + interval
            await asyncio.sleep(interval)
            append((clock() - due) * 1000.0)

    async def stop(self) -> list[float]:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        return self.samples_ms


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


# --------------------------------------------------------------------------- sim process


def write_scenario(path: Path, responses: Sequence[Sequence[str]], *, repeat: int = 1) -> Path:
    """A scenario JSON whose response queue repeats ``responses`` ``repeat`` times."""
    items = [{"items": [{"say": text} for text in resp]} for resp in responses] * repeat
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"name": "bench", "responses": items}), encoding="utf-8")
    return path


@dataclass
class SimProcess:
    """``vocalis sim-server`` running in its own process (started by :func:`sim_process`)."""

    proc: asyncio.subprocess.Process
    url: str

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def base_url(self) -> str:
        """The root the clients take: before ``/realtime`` (OpenAI) or ``/ws/`` (Gemini)."""
        return self.url.split("/realtime", 1)[0].split("/ws/", 1)[0]

    def cpu_seconds(self) -> float:
        return proc_cpu_seconds(self.pid)

    def rss(self) -> int:
        return rss_bytes(self.pid)


@contextlib.asynccontextmanager
async def sim_process(
    scenario: Path,
    *,
    pace: float,
    log: Path | None = None,
    extra_args: Sequence[str] = (),
) -> AsyncIterator[SimProcess]:
    """Start the sim server as a child process on a free port; stop it on exit."""
    args = [
        sys.executable,
        "-m",
        "vocalis.cli",
        "sim-server",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--pace",
        str(pace),
        "--scenario",
        str(scenario),
    ]
    if log is not None:
        args += ["--log", str(log)]
    args += list(extra_args)
    async with server_process(args, "sim-server") as sim:
        yield sim


@contextlib.asynccontextmanager
async def server_process(args: Sequence[str], name: str) -> AsyncIterator[SimProcess]:
    """Start a provider server that prints its URL as its first line; stop it on exit."""
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        url = line.decode().strip()
        if not url.startswith(("ws://", "wss://")):
            err = await proc.stderr.read() if proc.stderr else b""
            raise RuntimeError(f"{name} did not start: {err.decode(errors='replace')[-500:]}")
        yield SimProcess(proc, url)
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()


# --------------------------------------------------------------------------- caller audio


def caller_speech(text: str = CALLER_LINE) -> np.ndarray:
    """The caller's line as 24 kHz int16 (real espeak speech, so server VAD sees real audio)."""
    from vocalis.audio.espeak import synthesize

    return synthesize(text, voice="en-us+m3", sample_rate=RATE).samples


def caller_cycle(period_s: float, text: str = CALLER_LINE, frame_ms: int = FRAME_MS) -> np.ndarray:
    """One caller cycle: the line, then silence up to ``period_s`` (a whole number of frames)."""
    speech = caller_speech(text)
    frame = RATE * frame_ms // 1000
    total = round(period_s * 1000 / frame_ms) * frame
    cycle = np.zeros(max(total, speech.shape[0] + frame), dtype=np.int16)
    cycle[: speech.shape[0]] = speech
    pad = (-cycle.shape[0]) % frame
    if pad:
        cycle = np.concatenate([cycle, np.zeros(pad, dtype=np.int16)])
    return cycle


def frames_of(audio: np.ndarray, frame_ms: int = FRAME_MS) -> list[np.ndarray]:
    """``audio`` as ``frame_ms`` frame views (no copies)."""
    n = RATE * frame_ms // 1000
    return [audio[i : i + n] for i in range(0, audio.shape[0], n)]


# --------------------------------------------------------------------------- results


def write_json(name: str, data: dict[str, Any], results_dir: Path = RESULTS) -> Path:
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return path


def append_run(name: str, run: dict[str, Any], results_dir: Path = RESULTS) -> Path:
    """Add one run to `results/<name>.json` (`{"runs": [...]}`), keeping the earlier ones
    (before/after comparisons live in one file)."""
    path = results_dir / f"{name}.json"
    runs = json.loads(path.read_text())["runs"] if path.exists() else []
    return write_json(name, {"runs": [*runs, run]}, results_dir)


async def echo_call(transport: Any) -> None:
    """An `on_call` that plays the caller's audio back: one segment, every frame pushed as it
    arrives (the per-session CPU benches: the transport's work both ways, no model)."""
    segment = transport.audio_out.begin_segment("echo", 24000)
    async for frame in transport.audio_in.frames(24000):
        segment.push(frame.samples)
    segment.end()


def log(message: str) -> None:
    """Progress on stderr (stdout of workers carries their JSON result)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
