"""``bench.hotpath --only memory``: the Python heap a speaking session keeps, and the cyclic
garbage each response leaves behind.

Why (#17): memory per extra session is measured end to end by `bench.continuous` (RSS slope
between two N), which needs many sessions and a quiet machine. This is the same load at a
small N, read from inside the process: real `AgentSession`s (`bench.agents.VocalisAgent`)
against `vocalis sim-server` (pace 2, as in `bench.continuous`), each speaking a ~2 s reply
after another, the Python heap traced by `tracemalloc`. A traced heap does not move with the
neighbours' load, unlike RSS on a shared machine.

* ``memory_kb_per_session_mean`` / ``_max``: heap above the process's own before the sessions
  opened (after one session opened and closed: imports, per-process state), per session,
  sampled every 50 ms over the window. It includes the audio a pace-2 provider sends ahead
  of playback (the bare client holds that too).
* ``memory_kb_per_idle_session`` / ``memory_tasks_per_idle_session``: the same heap, and the
  live asyncio tasks, per session once every session is connected and before any speaks:
  the long-lived state a call keeps whatever it does (tasks, flags, socket buffers, the
  input timeline), without the audio ahead that makes the speaking figures move.
* ``memory_small_kb_per_session`` / ``memory_large_kb_per_session``: the speaking heap at
  the end of the window split by block size. Blocks of at most 512 bytes are Python's small
  objects (the session's and its responses' state, held in pymalloc's arenas); larger ones
  are mostly the decoded audio ahead of playback and socket buffers, which any client
  holds. ``memory_bare_small_kb_per_session`` / ``memory_bare_large_kb_per_session``: the
  same for the wire-only client (`bench.agents.BareClient` on picows) in the same run, so
  the small-object figure reads as vocalis' own cost against that floor (#17).
* ``memory_cyclic_objects_per_response``: objects the cyclic collector found after the
  window, run with the collector off, per completed response. 0 when every settled response
  is freed by reference counting; a response caught in a reference cycle leaves ~100 objects
  (~27 KB) for the next full collection, which `gc_tuning` makes rare under load.
"""

from __future__ import annotations

import asyncio
import gc
import tracemalloc

from bench.common import REPO, sim_process, write_scenario
from bench.turnaround import LONG_REPLY


async def session_memory(
    sessions: int = 10, seconds: float = 8.0, *, warmup: float = 2.0
) -> dict[str, float]:
    """Traced heap per session over the window, and cyclic garbage per response."""
    from bench.agents import VocalisAgent  # the full runtime; only this measure needs it

    scenario = write_scenario(
        REPO / "out" / "bench" / "hotpath_memory.json", [[LONG_REPLY]], repeat=5000
    )
    async with sim_process(scenario, pace=2.0) as sim:
        first = VocalisAgent()  # what the first session sets up once per process (imports)
        await first.start(sim.base_url)
        await first.aclose()
        gc.collect()
        tasks0 = len(asyncio.all_tasks())
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            agents = [VocalisAgent() for _ in range(sessions)]
            for agent in agents:
                await agent.start(sim.base_url)
            await asyncio.sleep(0.5)  # connected, configured, listening to a silent caller
            gc.collect()
            idle = tracemalloc.get_traced_memory()[0] - base
            idle_tasks = len(asyncio.all_tasks()) - tasks0
            for agent in agents:
                agent.keep_speaking()
            await asyncio.sleep(warmup)
            gc.collect()
            gc.disable()
            try:
                done0 = sum(agent.responses for agent in agents)
                samples = await _sample_heap(seconds)
                responses = sum(agent.responses for agent in agents) - done0
            finally:
                gc.enable()
            cyclic = gc.collect()
            small, large = _split_heap(tracemalloc.take_snapshot())
            for agent in agents:
                await agent.aclose()
        finally:
            tracemalloc.stop()
        bare_small, bare_large = await _bare_heap(sim.base_url, sessions, warmup + seconds)
    if responses <= 0:  # a broken session must not pass as a figure
        raise RuntimeError("hotpath memory: no response completed in the measured window")
    above = [(s - base) / 1024.0 / sessions for s in samples]
    return {
        "memory_kb_per_idle_session": idle / 1024.0 / sessions,
        "memory_tasks_per_idle_session": idle_tasks / sessions,
        "memory_kb_per_session_mean": sum(above) / len(above),
        "memory_kb_per_session_max": max(above),
        "memory_small_kb_per_session": small / 1024.0 / sessions,
        "memory_large_kb_per_session": large / 1024.0 / sessions,
        "memory_bare_small_kb_per_session": bare_small / 1024.0 / sessions,
        "memory_bare_large_kb_per_session": bare_large / 1024.0 / sessions,
        "memory_cyclic_objects_per_response": cyclic / responses,
    }


# pymalloc serves requests up to this size from its arenas; larger ones go to malloc.
SMALL_BLOCK = 512


def _split_heap(snapshot: tracemalloc.Snapshot) -> tuple[int, int]:
    """Bytes still allocated since tracing started: (small blocks, large blocks)."""
    small = large = 0
    for trace in snapshot.traces:
        if trace.size <= SMALL_BLOCK:
            small += trace.size
        else:
            large += trace.size
    return small, large


async def _bare_heap(base_url: str, sessions: int, seconds: float) -> tuple[int, int]:
    """`_split_heap` for wire-only clients speaking as long as the sessions did."""
    from bench.agents import BareClient

    first = BareClient("picows", caller="feeder")  # per-process setup, as for the sessions
    await first.start(base_url)
    await first.aclose()
    gc.collect()
    tracemalloc.start()
    try:
        clients = [BareClient("picows", caller="feeder") for _ in range(sessions)]
        for client in clients:
            await client.start(base_url)
        for client in clients:
            client.keep_speaking()
        await asyncio.sleep(seconds)
        gc.collect()
        heap = _split_heap(tracemalloc.take_snapshot())
        for client in clients:
            await client.aclose()
        return heap
    finally:
        tracemalloc.stop()


async def _sample_heap(seconds: float, every: float = 0.05) -> list[int]:
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    samples = [tracemalloc.get_traced_memory()[0]]
    while loop.time() < end:
        await asyncio.sleep(every)
        samples.append(tracemalloc.get_traced_memory()[0])
    return samples
