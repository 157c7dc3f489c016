"""Profiling a density worker with pyinstrument: where the agent process spends its CPU.

pyinstrument samples the main thread's Python stack (1 ms interval here); native time (base64,
JSON, socket syscalls) is attributed to the Python frame that called it, which is what we want
for "which of our lines is expensive". The report aggregates *self* time per function (the
time spent in that function's own code and in C calls it made) and *total* time per function
(counted once per stack, so recursion does not inflate it).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pyinstrument import Profiler


@contextlib.contextmanager
def profiled(out: Path, interval: float = 0.001) -> Iterator[None]:
    profiler = Profiler(interval=interval, async_mode="disabled")
    profiler.start()
    try:
        yield
    finally:
        profiler.stop()
        session = profiler.last_session
        assert session is not None
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(top_entries(session)), encoding="utf-8")
        html = out.with_suffix(".html")
        html.write_text(profiler.output_html(), encoding="utf-8")


def _label(frame: Any) -> str:
    path = frame.file_path_short or frame.file_path or "?"
    return f"{frame.function} ({path}:{frame.line_no})"


def top_entries(session: Any, limit: int = 25) -> dict[str, Any]:
    root = session.root_frame()
    total = max(root.time, 1e-9) if root is not None else 1e-9
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

    def top(table: dict[str, float]) -> list[dict[str, Any]]:
        ranked = sorted(table.items(), key=lambda kv: kv[1], reverse=True)[:limit]
        return [
            {"function": k, "seconds": round(v, 4), "pct": round(100 * v / total, 2)}
            for k, v in ranked
        ]

    return {
        "sampled_seconds": round(total, 3),
        "cpu_seconds": round(session.cpu_time, 3) if getattr(session, "cpu_time", None) else None,
        "top_self": top(self_time),
        "top_total": top(incl_time),
    }
