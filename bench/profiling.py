"""Profiling a density worker with pyinstrument: where the agent process spends its CPU.

pyinstrument samples the main thread's Python stack (1 ms interval here); native time (base64,
JSON, socket syscalls) is attributed to the Python frame that called it, which is what we want
for "which of our lines is expensive". The report aggregates *self* time per function (the
time spent in that function's own code and in C calls it made) and *total* time per function
(counted once per stack, so recursion does not inflate it). Percentages are of *busy* samples:
the time the loop sat in ``epoll`` waiting is left out.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pyinstrument import Profiler

# Where an idle event loop waits: excluded from the percentages (they are % of busy time).
_IDLE = ("epoll.poll", "select (selectors.py")


class WindowProfiler:
    """Samples the measurement window only (not imports, connects or teardown)."""

    def __init__(self, out: Path, interval: float = 0.001) -> None:
        self.out = out
        self._profiler = Profiler(interval=interval, async_mode="disabled")

    def start(self) -> None:
        self._profiler.start()

    def stop(self) -> None:
        self._profiler.stop()
        session = self._profiler.last_session
        assert session is not None
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.out.write_text(json.dumps(top_entries(session)), encoding="utf-8")
        self.out.with_suffix(".html").write_text(self._profiler.output_html(), encoding="utf-8")


def _label(frame: Any) -> str:
    path = frame.file_path_short or frame.file_path or "?"
    return f"{frame.function} ({path}:{frame.line_no})"


def top_entries(session: Any, limit: int = 40) -> dict[str, Any]:
    root = session.root_frame()
    sampled = max(root.time, 1e-9) if root is not None else 1e-9
    self_time: dict[str, float] = {}
    incl_time: dict[str, float] = {}

    def walk(frame: Any, on_stack: frozenset[str]) -> None:
        label = _label(frame)
        # Synthetic "[self]" leaves hold the frame's own time: bill it to the frame itself.
        children = [c for c in frame.children if not c.is_synthetic_leaf]
        own = frame.time - sum(child.time for child in children)
        self_time[label] = self_time.get(label, 0.0) + max(0.0, own)
        if label not in on_stack:
            incl_time[label] = incl_time.get(label, 0.0) + frame.time
        stack = on_stack | {label}
        for child in children:
            walk(child, stack)

    if root is not None:
        walk(root, frozenset())
    idle = sum(v for k, v in self_time.items() if k.startswith(_IDLE))
    total = max(sampled - idle, 1e-9)
    for table in (self_time, incl_time):
        for key in [k for k in table if k.startswith(_IDLE)]:
            del table[key]

    def top(table: dict[str, float]) -> list[dict[str, Any]]:
        ranked = sorted(table.items(), key=lambda kv: kv[1], reverse=True)[:limit]
        return [
            {"function": k, "seconds": round(v, 4), "pct": round(100 * v / total, 2)}
            for k, v in ranked
        ]

    ours = {k: v for k, v in incl_time.items() if "vocalis/" in k}
    return {
        "sampled_seconds": round(sampled, 3),
        "busy_seconds": round(total, 3),
        "top_vocalis_total": top(ours),
        "cpu_seconds": round(session.cpu_time, 3) if getattr(session, "cpu_time", None) else None,
        "top_self": top(self_time),
        "top_total": top(incl_time),
    }
