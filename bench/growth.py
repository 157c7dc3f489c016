"""Cost growth: CPU and RSS of one session as the conversation gets longer (1, 10, 60 min).

Compressed time, and why it is honest: the agent runs on a `ManualClock` (sink playout,
transcript release, watchdogs, the provider's 55-minute proactive reconnect), the sim streams
as fast as the socket allows (``pace 0``), and the caller's audio is sent frame by frame with
the clock advanced 20 ms per frame. Every byte of protocol traffic of a real call still flows —
every 20 ms append, every audio delta, every truncate/ledger op, the reconnect and its history
replay — only the *waiting* between them is skipped. The one place the script waits in wall
time is at the end of each caller turn, until the whole response has arrived, so that playout
in compressed time never starves.

The 1- and 10-minute figures are checkpoints of the 60-minute session (identical behaviour up
to that point). The baseline is `BareClient`-style wire handling of the same traffic (no
runtime, no history) so the growth that belongs to vocalis is visible as the difference.
"""

from __future__ import annotations

import asyncio
import binascii
import json
import sys
import time
from pathlib import Path
from typing import Any

from bench.agents import VocalisAgent
from bench.common import (
    ANSWER,
    FRAME_MS,
    PREAMBLE,
    REPO,
    caller_cycle,
    caller_speech,
    connect_sim,
    frames_of,
    log,
    ratio,
    rss_bytes,
    sim_process,
    write_scenario,
)
from vocalis.utils.clock import ManualClock

PERIOD_S = 6.0
_FRAME_S = FRAME_MS / 1000.0


def _cycle() -> tuple[list[Any], int]:
    """Frames of one caller cycle, and the frame index after which the turn must have ended."""
    frames = frames_of(caller_cycle(PERIOD_S))
    speech_frames = -(-caller_speech().shape[0] // frames[0].shape[0])
    return frames, speech_frames + 30  # server VAD needs 500 ms of silence; 100 ms margin


class _ResponseCounter:
    """Counts ``response.created`` / ``response.done`` the provider core sees (bench wrapper).

    While a response is in flight the script stops moving the clock (see the module doc)."""

    def __init__(self) -> None:
        self.created = 0
        self.done = 0
        self.changed = asyncio.Event()

    def wrap(self, core: Any) -> None:
        original = core.receive

        def receive(event: Any) -> Any:
            if isinstance(event, dict):
                kind = event.get("type")
                if kind == "response.created":
                    self.created += 1
                    self.changed.set()
                elif kind == "response.done":
                    self.done += 1
                    self.changed.set()
            return original(event)

        core.receive = receive

    @property
    def in_flight(self) -> bool:
        return self.created > self.done

    async def wait_created(self, beyond: int, within: float = 10.0) -> bool:
        try:
            async with asyncio.timeout(within):
                while self.created <= beyond:
                    self.changed.clear()
                    await self.changed.wait()
        except TimeoutError:
            return False
        return True

    async def wait_done(self, within: float = 10.0) -> bool:
        try:
            async with asyncio.timeout(within):
                while self.created > self.done:
                    self.changed.clear()
                    await self.changed.wait()
        except TimeoutError:
            return False
        return True


async def _pushed(agent: VocalisAgent) -> None:
    """Let the playout task move every received chunk into the sink (no clock movement)."""
    sink = agent.transport.sink
    for _ in range(2000):
        segments = sink._segments
        if len(segments) >= 2 and all(seg.ended for seg in segments):  # preamble + answer
            return
        await asyncio.sleep(0)


async def _vocalis(base_url: str, checkpoints: list[float]) -> dict[str, Any]:
    clock = ManualClock(start=1000.0)
    agent = VocalisAgent(clock, model_clock=clock)
    rss0 = rss_bytes()
    await agent.start(base_url)
    assert agent.session is not None and agent.session.provider is not None
    counter = _ResponseCounter()
    provider = agent.session.provider
    counter.wrap(provider._core)  # type: ignore[attr-defined]
    frames, wait_at = _cycle()
    marks: list[dict[str, Any]] = []
    cpu0 = time.process_time()
    wall0 = time.perf_counter()
    minutes = 0.0
    stalls = 0
    next_mark = 0
    total_frames = 0
    while next_mark < len(checkpoints):
        created = counter.created
        for k, frame in enumerate(frames):
            await agent.feed(frame)
            await clock.advance(_FRAME_S, settle_rounds=3)
            total_frames += 1
            if k == wait_at and not await counter.wait_created(created):
                stalls += 1
            if counter.in_flight:
                if not await counter.wait_done():
                    stalls += 1
                await _pushed(agent)
        minutes = total_frames * _FRAME_S / 60.0
        if minutes + 1e-9 >= checkpoints[next_mark]:
            session = agent.session
            marks.append(
                {
                    "minutes": checkpoints[next_mark],
                    "cpu_s": round(time.process_time() - cpu0, 3),
                    "wall_s": round(time.perf_counter() - wall0, 2),
                    "rss_mb": round(rss_bytes() / 2**20, 2),
                    "rss_added_mb": round((rss_bytes() - rss0) / 2**20, 2),
                    "responses": counter.done,
                    "history_items": len(session.history),
                    "event_log": len(session.event_log),
                    "reconnects": getattr(provider, "reconnects", None),
                    "underruns": agent.underruns,
                }
            )
            log(f"growth vocalis {checkpoints[next_mark]:g} min: {marks[-1]}")
            next_mark += 1
    await agent.aclose()
    return {"marks": marks, "turn_wait_timeouts": stalls}


async def _bare(base_url: str, checkpoints: list[float]) -> dict[str, Any]:
    """Same traffic, wire work only: append encode+send, event parse + audio decode."""
    ws = await connect_sim(
        f"{base_url}/realtime?model=gpt-realtime",
        compression=None,
        max_size=16 * 2**20,
    )
    rss0 = rss_bytes()
    done = 0
    changed = asyncio.Event()
    decoded = 0

    async def recv() -> None:
        nonlocal done, decoded
        async for raw in ws:
            event = json.loads(raw)
            kind = event["type"]
            if kind == "response.output_audio.delta":
                decoded += len(binascii.a2b_base64(event["delta"]))
            elif kind == "response.done":
                done += 1
                changed.set()

    reader = asyncio.create_task(recv())
    frames, wait_at = _cycle()
    prefix = '{"type":"input_audio_buffer.append","audio":"'
    marks: list[dict[str, Any]] = []
    cpu0 = time.process_time()
    total_frames = 0
    next_mark = 0
    while next_mark < len(checkpoints):
        before = done
        for k, frame in enumerate(frames):
            b64 = binascii.b2a_base64(frame.data.cast("B"), newline=False).decode("ascii")
            await ws.send(prefix + b64 + '"}')
            total_frames += 1
            if k == wait_at:
                try:
                    async with asyncio.timeout(10):
                        while done <= before:
                            changed.clear()
                            await changed.wait()
                except TimeoutError:
                    pass
        if total_frames * _FRAME_S / 60.0 + 1e-9 >= checkpoints[next_mark]:
            marks.append(
                {
                    "minutes": checkpoints[next_mark],
                    "cpu_s": round(time.process_time() - cpu0, 3),
                    "rss_mb": round(rss_bytes() / 2**20, 2),
                    "rss_added_mb": round((rss_bytes() - rss0) / 2**20, 2),
                    "responses": done,
                }
            )
            next_mark += 1
    reader.cancel()
    await ws.close()
    return {"marks": marks}


def _per_minute(marks: list[dict[str, Any]]) -> None:
    prev_min, prev_cpu = 0.0, 0.0
    for m in marks:
        span = m["minutes"] - prev_min
        m["cpu_ms_per_conversation_s"] = round((m["cpu_s"] - prev_cpu) * 1000 / (span * 60), 3)
        prev_min, prev_cpu = m["minutes"], m["cpu_s"]


async def _variant(
    variant: str, scenario: Path, checkpoints: list[float]
) -> tuple[dict[str, Any], int]:
    """Run one variant in a fresh process (so its RSS is its own) against a fresh sim."""
    async with sim_process(scenario, pace=0.0) as sim:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.growth",
            variant,
            sim.base_url,
            ",".join(str(c) for c in checkpoints),
            cwd=REPO,
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await proc.communicate()
        sim_rss = sim.rss()
    for line in out.decode().splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :]), sim_rss
    raise RuntimeError(f"growth {variant} produced no result (exit {proc.returncode})")


async def run(scratch: Path, checkpoints: list[float]) -> dict[str, Any]:
    turns = int(max(checkpoints) * 60 / PERIOD_S) + 20
    scenario = write_scenario(scratch / "growth_scenario.json", [[PREAMBLE, ANSWER]], repeat=turns)
    started = time.perf_counter()
    vocalis, sim_rss = await _variant("vocalis", scenario, checkpoints)
    bare, _ = await _variant("bare", scenario, checkpoints)
    _per_minute(vocalis["marks"])
    _per_minute(bare["marks"])
    for mv, mb in zip(vocalis["marks"], bare["marks"], strict=True):
        mv["ratio_cpu_vs_bare"] = ratio(
            mv["cpu_ms_per_conversation_s"], mb["cpu_ms_per_conversation_s"]
        )
    return {
        "method": "compressed time: ManualClock agent, sim pace 0, real protocol traffic",
        "period_s": PERIOD_S,
        "checkpoints_min": checkpoints,
        "vocalis": vocalis,
        "baseline_bare": bare,
        "sim_rss_mb_end": round(sim_rss / 2**20, 1),
        "elapsed_s": round(time.perf_counter() - started, 1),
    }


def _main(argv: list[str]) -> int:
    variant, url, marks = argv
    checkpoints = [float(x) for x in marks.split(",")]
    runner = _vocalis if variant == "vocalis" else _bare
    result = asyncio.run(runner(url, checkpoints))
    print("RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
