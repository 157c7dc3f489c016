"""The files a run leaves behind (history JSON, events JSONL, the timeline page).

Why: `vocalis demo` and `vocalis run` promise proof of what the caller heard — `history.json`,
`events.jsonl`, a stereo recording and `timeline.html`. This module owns the events file format
(one JSON object per session event, times relative to the start of the conversation); the
page can be regenerated from the files alone
(`timeline_build.build_timeline(load_history(p), load_events(q))`).

Event records: `{"t": seconds since start, "type": "agent_state_changed", ...fields}` where
`type` is the snake_case name of the runtime event class and fields are its dataclass fields;
absolute clock fields (`at`, `*_at`) are converted to seconds since start as well. Items in
`conversation_item_added` are their history JSON. A traced call (docs/observability.md) starts
with `{"t": 0.0, "type": "trace", "trace_id": ...}` and its history has the same `trace_id`, so
a slow turn found in a trace backend leads to these files and back.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from vocalis.app.reports.timeline import render_html
from vocalis.app.reports.timeline_build import build_timeline
from vocalis.transports.file import write_history_json

_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def event_type_name(event: object) -> str:
    name = type(event).__name__
    name = name.removesuffix("Event") if name.endswith("Event") and name != "Event" else name
    return _CAMEL.sub("_", name).lower()


def _relative(value: object, origin: float) -> object:
    return round(value - origin, 4) if isinstance(value, float) else value


def _plain(value: Any) -> Any:
    to_json = getattr(value, "to_json", None)
    if callable(to_json):
        return to_json()
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return value


def event_to_json(event: object, *, t: float, origin: float) -> dict[str, Any]:
    """One session event as a JSON-ready record (see module docstring)."""
    record: dict[str, Any] = {"t": round(t - origin, 4), "type": event_type_name(event)}
    if dataclasses.is_dataclass(event) and not isinstance(event, type):
        for f in dataclasses.fields(event):
            value = getattr(event, f.name)
            if f.name == "at" or f.name.endswith("_at"):
                record[f.name] = _relative(value, origin)
            else:
                record[f.name] = _plain(value)
    # TurnMetrics has its own JSON shape (rounded ms, messages) — keep it, plus the times.
    to_json = getattr(event, "to_json", None)
    if callable(to_json):
        extra = to_json()
        if isinstance(extra, dict):
            record.update({k: v for k, v in extra.items() if k != "messages"})
            if "messages" in extra:
                record["messages"] = extra["messages"]
    return record


def stamp_trace(
    history: dict[str, Any], events: list[dict[str, Any]], trace_id: str | None
) -> None:
    """Record the call's OpenTelemetry trace id in its history and events (when traced)."""
    if trace_id is None:
        return
    history["trace_id"] = trace_id
    events.insert(0, {"t": 0.0, "type": "trace", "trace_id": trace_id})


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")


def write_call_files(
    history: dict[str, Any],
    events: Sequence[dict[str, Any]],
    *,
    history_path: Path | None = None,
    events_path: Path | None = None,
    timeline_path: Path | None = None,
    title: str,
    caller_speech_ms: Sequence[tuple[float, float]] | None = None,
) -> list[Path]:
    """Write the proof files of one call (`demo`, `run` and `serve --out` all write the same
    three); a `None` path is skipped. Returns the paths written, in that order."""
    written: list[Path] = []
    if history_path is not None:
        write_history_json(history_path, history)
        written.append(history_path)
    if events_path is not None:
        write_jsonl(events_path, events)
        written.append(events_path)
    if timeline_path is not None:
        timeline = build_timeline(history, events, title=title, caller_speech_ms=caller_speech_ms)
        timeline_path.parent.mkdir(parents=True, exist_ok=True)
        timeline_path.write_text(render_html(timeline), encoding="utf-8")
        written.append(timeline_path)
    return written


def load_history(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("items"), list):
        raise ValueError(f"{path}: expected a JSON object with an 'items' list")
    return data


def load_events(path: Path) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        record = json.loads(line)
        if not isinstance(record, dict):
            raise ValueError(f"{path} line {number}: expected a JSON object")
        records.append(record)
    return records
