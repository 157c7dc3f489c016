"""Garbage-collector settings for a process that carries many real-time sessions.

Why: CPython's cyclic collector runs a *full* collection (every tracked object of every
session, plus every imported module's objects) whenever enough young objects survived. With
tens of sessions that walk takes tens of milliseconds, during which no session's event loop
runs: every sink misses its tick at the same moment (the whole-loop stall of issue #17).

`settle_heap()` is called once the process is set up (imports done, server listening):

* it collects once and then *freezes* everything alive — modules, classes, the server — into
  the permanent generation, so later full collections walk only what sessions allocated;
* it makes full collections ten times rarer (the oldest generation's threshold), while the
  young and middle generations stay small: their pause grows with how many objects they hold
  (measured under the continuous-speech load at 100 sessions: a young collection of up to
  50,000 objects took 28 ms of CPU, one of the default 700 at most 4 ms; a middle collection
  after 10 young ones 10-16 ms at 60-80 sessions, after 2 young ones 4-6.5 ms).

Reference counting frees almost everything on the audio path; the cyclic collector only
reclaims cycles, and frozen objects are still freed by reference counting when they die.
"""

from __future__ import annotations

import gc

__all__ = ["GC_THRESHOLDS", "settle_heap"]

# (young, middle, old) — CPython's default is (700, 10, 10). A middle collection walks what
# survived the young ones since the last middle one — at 60-80 speaking sessions the live
# tasks, futures, coroutines and contexts of every session's current response: after 10 young
# collections that took 10-16 ms of CPU (the largest single block in the loop-lag maximum of
# the continuous load), after 2 it takes 4-6.5 ms (same total work, in five smaller pieces).
# A full collection — which walks every session's objects, ~65 ms of CPU at 100 sessions
# without the freeze — runs after 500 middle ones: every 1,000 young collections, as before.
GC_THRESHOLDS = (1_000, 2, 500)


def settle_heap(thresholds: tuple[int, int, int] = GC_THRESHOLDS) -> None:
    """Collect once, freeze what is alive now, and set the collector's thresholds."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*thresholds)
