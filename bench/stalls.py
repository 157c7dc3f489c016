"""What the event loop was doing when it stalled: a watchdog thread samples the loop thread's
stack while the loop is late, for the loop-lag *max* of the density load (issue #17 (1)).

Why a thread: the lag probe only sees *that* the loop woke late, and a profile of the whole
window drowns a 50 ms stall in 12 s of ordinary work. The loop beats a heartbeat every
``beat_s``; a daemon thread checks it every ``poll_s`` and, once the beat is older than
``threshold_s``, records the loop thread's stack (`sys._current_frames`) every poll until the
loop beats again. One stall = one record with its wall duration, the process CPU time spent
during it (wall far above CPU: the process was descheduled — other load on the machine —,
not busy with our work), the garbage collections that ran inside it and the sampled stacks.

Limits: a thread samples only when it gets the GIL, so C code that holds the GIL (a garbage
collection, one long numpy call) shows as the stack around it, after it; collections are
recorded separately (`gc.callbacks`) with their own times. The watchdog costs ~200 wake-ups a
second of a thread that only reads a float: a diagnostic mode, not for CPU measurements.
"""

from __future__ import annotations

import asyncio
import bisect
import gc
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

# Frames of these files are machinery, not the work: left out of a stack's "what ran" tail.
_MACHINERY = ("asyncio/events.py", "asyncio/base_events.py", "uvloop/", "selectors.py")


@dataclass
class Stall:
    start: float  # the last beat before the stall (the loop was due again one beat later)
    seen: float  # when the watchdog noticed it
    cpu0: float  # process CPU time then
    wall_ms: float = 0.0
    # Process CPU over the part the watchdog saw, per wall second of it: ~1 = the loop thread
    # was running (our work), far below 1 = the process waited (descheduled, or blocked).
    cpu_share: float = 0.0
    stacks: Counter[tuple[str, ...]] = field(default_factory=Counter)


def _census(generation: int) -> dict[str, Any]:
    """The objects a collection of ``generation`` is about to walk (young ones included),
    counted by type, and the largest containers among them (a long list costs its length)."""
    objects = [o for g in range(generation + 1) for o in gc.get_objects(g)]
    types = Counter(type(o).__name__ for o in objects)
    sized = [(len(o), type(o).__name__) for o in objects if isinstance(o, list | dict | set)]
    return {
        "generation": generation,
        "objects": len(objects),
        "types": types.most_common(12),
        "largest": sorted(sized, reverse=True)[:8],
    }


def _stack(frame: Any, depth: int = 14) -> tuple[str, ...]:
    """The innermost ``depth`` frames of ``frame``'s stack as ``func (file:line)``, leaf last."""
    out: list[str] = []
    while frame is not None and len(out) < depth:
        code = frame.f_code
        path = code.co_filename
        if not any(m in path for m in _MACHINERY):
            short = path.split("/site-packages/")[-1].split("/src/")[-1]
            out.append(f"{code.co_name} ({short}:{frame.f_lineno})")
        frame = frame.f_back
    return tuple(reversed(out))


class StallWatch:
    """Records every stretch the loop was late by more than ``threshold_s`` (see module doc)."""

    def __init__(
        self,
        threshold_s: float = 0.020,
        beat_s: float = 0.005,
        poll_s: float = 0.002,
        *,
        censuses: int = 0,
        clock: Callable[[], float] = time.perf_counter,
        on_sample: Callable[[], None] | None = None,
    ) -> None:
        self.threshold_s = threshold_s
        self._beat_s = beat_s
        self._poll_s = poll_s
        # The time every beat, stall and collection is read on (a test drives its own), and
        # a hook the watchdog thread calls after each stack it sampled (a test waits on it).
        self._clock = clock
        self._on_sample = on_sample
        # Set by `start`, on the loop's thread: its first beat, and the thread to sample.
        self._beat: float
        self._origin: float
        self._loop_ident: int
        self._handle: asyncio.TimerHandle | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="stall-watch", daemon=True)
        self.stalls: list[Stall] = []
        self._current: Stall | None = None
        # Every collection: (start, generation, wall ms), matched to stalls afterwards.
        self.collections: list[tuple[float, int, float]] = []
        self._gc_t0 = 0.0
        # What the first ``censuses`` middle/full collections walked, by type. Off by default:
        # a census walks the heap inside the collection's stall and lengthens it.
        self._census_left = censuses
        self.censuses: list[dict[str, Any]] = []

    def start(self) -> None:
        self._loop_ident = threading.get_ident()
        self._origin = self._beat = self._clock()
        self._beat_tick(asyncio.get_running_loop())
        gc.callbacks.append(self._on_gc)
        self._thread.start()

    def stop(self, marks: Sequence[float] = ()) -> list[dict[str, Any]]:
        """End watching; each stall's summary counts the ``marks`` (times on the clock, e.g.
        completed responses) from 1 s before it to its end: a burst of sessions in lockstep."""
        self._stop.set()
        self._thread.join()
        if self._handle is not None:
            self._handle.cancel()
        gc.callbacks.remove(self._on_gc)
        return [self._summary(s, sorted(marks)) for s in self.stalls]

    def _beat_tick(self, loop: asyncio.AbstractEventLoop) -> None:
        self._beat = self._clock()
        self._handle = loop.call_later(self._beat_s, self._beat_tick, loop)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            generation = info["generation"]
            if generation >= 1 and self._census_left > 0:
                self._census_left -= 1
                self.censuses.append(_census(generation))
            self._gc_t0 = self._clock()
        else:
            ms = (self._clock() - self._gc_t0) * 1000.0
            self.collections.append((self._gc_t0, info["generation"], ms))

    def _watch(self) -> None:
        frames = sys._current_frames
        clock, on_sample = self._clock, self._on_sample
        while not self._stop.wait(self._poll_s):
            now = clock()
            beat = self._beat
            current = self._current
            if now - beat - self._beat_s > self.threshold_s:
                if current is None:
                    current = self._current = Stall(beat, now, time.process_time())
                frame = frames().get(self._loop_ident)
                if frame is not None:
                    current.stacks[_stack(frame)] += 1
                    if on_sample is not None:
                        on_sample()
            elif current is not None and beat > current.start:
                current.wall_ms = (beat - current.start - self._beat_s) * 1000.0
                seen_s = max(1e-6, now - current.seen)
                current.cpu_share = (time.process_time() - current.cpu0) / seen_s
                self.stalls.append(current)
                self._current = None

    def _summary(self, stall: Stall, marks: list[float]) -> dict[str, Any]:
        leaves: Counter[str] = Counter()
        for stack, n in stall.stacks.items():
            if stack:
                leaves[stack[-1]] += n
        end = stall.start + self._beat_s + stall.wall_ms / 1000.0
        collections = [
            {"gen": g, "ms": round(ms, 2)}
            for t0, g, ms in self.collections
            if t0 < end and t0 + ms / 1000.0 > stall.start
        ]
        return {
            "at_s": round(stall.start - self._origin, 3),
            "wall_ms": round(stall.wall_ms, 1),
            "cpu_share": round(stall.cpu_share, 2),
            "gc": collections,
            "marks_1s_before": bisect.bisect_right(marks, end)
            - bisect.bisect_left(marks, stall.start - 1.0),
            "samples": sum(stall.stacks.values()),
            "leaves": leaves.most_common(8),
            "stacks": [{"n": n, "stack": list(stack)} for stack, n in stall.stacks.most_common(4)],
        }
