"""Garbage-collector settings for a process that carries many real-time sessions.

Why: CPython's cyclic collector runs a *full* collection (every tracked object of every
session, plus every imported module's objects) whenever enough young objects survived. With
tens of sessions that walk takes tens of milliseconds, during which no session's event loop
runs: every sink misses its tick at the same moment (the whole-loop stall of issue #17).

`settle_heap()` is called once the process is set up (imports done, server listening):

* it collects once and then *freezes* everything alive — modules, classes, the server — into
  the permanent generation, so later full collections walk only what sessions allocated;
* it raises the young-generation threshold, so the per-frame garbage (short-lived and freed
  by reference counting anyway) triggers far fewer collections.

Reference counting frees almost everything on the audio path; the cyclic collector only
reclaims cycles, and frozen objects are still freed by reference counting when they die.
"""

from __future__ import annotations

import gc

__all__ = ["GC_THRESHOLDS", "settle_heap"]

# (young, middle, old) — CPython's default is (700, 10, 10). A young collection every 50 000
# net allocations instead of 700 (a few per second at 100 sessions instead of hundreds);
# the older generations keep their default ratios.
GC_THRESHOLDS = (50_000, 10, 10)


def settle_heap(thresholds: tuple[int, int, int] = GC_THRESHOLDS) -> None:
    """Collect once, freeze what is alive now, and set the collector's thresholds."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*thresholds)
