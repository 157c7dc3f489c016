"""``bench.hotpath --only turnaround``: CPU per response boundary of a speaking session.

Why: at N=100 in lockstep most sessions finish a response in the same ~100 ms, and the work
each does at that boundary (response.done → item done → history, ledger, metrics, events,
segment close → the next response.create → created → item added → first delta → first frame
to the sink) lands on the loop at once (`bench/stalls.py`). That work must stay far below
20 ms / 100 sessions. It is a fixed cost per response, so it is measured as one: real
`AgentSession`s (`bench.agents.VocalisAgent`: OpenAI client, runtime, heard ledger, clocked
sink on the real clock) against `vocalis sim-server` in its own process (pace 2, as in
`bench.continuous`), each asking for the next response as soon as one has played. A response
also plays its audio (frames, deltas, the follow loop); that part grows with the audio, so
each round runs a short and a long reply and splits the process CPU per response
``C = fixed + per_audio_s * audio_s`` into its two terms: ``fixed`` is the turnaround.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections import Counter
from collections.abc import Coroutine, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import REPO, log, sim_process, write_scenario
from bench.profiling import WindowProfiler

# Two replies of the same voice: 0.48 s and ~2 s of audio.
SHORT_REPLY = "Okay."
LONG_REPLY = "Okay, I found it. It arrives on Friday."


@dataclass(frozen=True, slots=True)
class ReplyCost:
    """Process CPU per completed response and the audio each response played."""

    responses: int
    cpu_us_per_response: float
    audio_ms_per_response: float
    # asyncio tasks the agent process created in the window, per response (the sim runs in
    # its own process), and by kind (task name without its ids) where one finished in it.
    tasks_per_response: float = 0.0
    task_kinds: dict[str, float] = field(default_factory=dict)


# "session:text:item_12" → "session:text"; asyncio's default names ("Task-7") → "Task".
_IDS = re.compile(r"(:[^:]*\d[^:]*|-\d+)$")


@contextlib.contextmanager
def counted_tasks() -> Iterator[Counter[str]]:
    """Count the tasks the running loop creates meanwhile: ``counter[""]`` all of them, and
    one entry per kind of task that finished meanwhile (named as it ends: `create_task` names
    a task after the factory made it). Why: a task is a coroutine, a future and loop turns; at
    a lockstep response boundary every session's tasks land on the loop at once (#17)."""
    loop = asyncio.get_running_loop()
    counts: Counter[str] = Counter()
    previous = loop.get_task_factory()

    def ended(task: asyncio.Task[Any]) -> None:
        counts[_IDS.sub("", task.get_name())] += 1

    def factory(
        loop: asyncio.AbstractEventLoop,
        coro: Coroutine[Any, Any, Any] | Generator[Any, None, Any],
        /,
        **kwargs: Any,
    ) -> asyncio.Future[Any]:
        counts[""] += 1
        task = asyncio.Task(coro, loop=loop, **kwargs)
        task.add_done_callback(ended)
        return task

    loop.set_task_factory(factory)
    try:
        yield counts
    finally:
        loop.set_task_factory(previous)


async def reply_cost(
    text: str,
    *,
    sessions: int,
    seconds: float,
    warmup: float = 1.5,
    profile: Path | None = None,
) -> ReplyCost:
    """Sessions speaking `text` back to back; CPU per response over the measured window."""
    from bench.agents import VocalisAgent  # the full runtime; only this measure needs it

    scenario = write_scenario(
        REPO / "out" / "bench" / "hotpath_turnaround.json", [[text]], repeat=5000
    )
    async with sim_process(scenario, pace=2.0) as sim:
        agents = [VocalisAgent() for _ in range(sessions)]
        for agent in agents:
            await agent.start(sim.base_url)
        for agent in agents:
            agent.keep_speaking()
            await asyncio.sleep(0.01)  # not in lockstep: this measures CPU, not bursts
        await asyncio.sleep(warmup)
        done0 = sum(len(agent.metrics) for agent in agents)
        profiler = WindowProfiler(profile) if profile is not None else None
        if profiler is not None:
            profiler.start()
        cpu0 = time.process_time()
        with counted_tasks() as tasks:
            await asyncio.sleep(seconds)
        cpu = time.process_time() - cpu0
        if profiler is not None:
            profiler.stop()
        measured = [m for agent in agents for m in agent.metrics[done0 // sessions :]]
        responses = sum(len(agent.metrics) for agent in agents) - done0
        for agent in agents:
            await agent.aclose()
    if responses <= 0:  # a broken boundary must not pass as a figure
        raise RuntimeError("hotpath turnaround: no response completed in the measured window")
    played = [sum(msg.played_ms for msg in m.messages) for m in measured] or [0.0]
    kinds = {kind: n / responses for kind, n in tasks.most_common() if kind}
    return ReplyCost(
        responses, cpu / responses * 1e6, sum(played) / len(played), tasks[""] / responses, kinds
    )


async def turnaround_path(
    sessions: int = 10, seconds: float = 8.0, *, warmup: float = 1.5, profile: Path | None = None
) -> dict[str, float]:
    """The fixed CPU per response (µs) and the CPU per played audio-second (ms), from the
    short and the long reply of the same sessions (see the module docstring); `profile`
    writes a pyinstrument report of the short replies' window there."""
    short = await reply_cost(
        SHORT_REPLY, sessions=sessions, seconds=seconds, warmup=warmup, profile=profile
    )
    long = await reply_cost(LONG_REPLY, sessions=sessions, seconds=seconds, warmup=warmup)
    per_ms = (long.cpu_us_per_response - short.cpu_us_per_response) / max(
        long.audio_ms_per_response - short.audio_ms_per_response, 1e-9
    )
    fixed = short.cpu_us_per_response - per_ms * short.audio_ms_per_response
    log(
        "turnaround tasks per response: "
        + ", ".join(f"{kind} {n:.2f}" for kind, n in short.task_kinds.items())
    )
    return {
        "turnaround_us_per_response": fixed,
        "turnaround_audio_ms_per_audio_s": per_ms,  # µs per ms = ms per s
        "turnaround_short_us_per_response": short.cpu_us_per_response,
        "turnaround_long_us_per_response": long.cpu_us_per_response,
        "turnaround_short_audio_ms": short.audio_ms_per_response,
        "turnaround_long_audio_ms": long.audio_ms_per_response,
        "turnaround_tasks_per_response": short.tasks_per_response,
    }
