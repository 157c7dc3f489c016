"""The files a run leaves behind, and turning them into the timeline.

Why: `vocalis demo` and `vocalis run` promise proof of what the caller heard — `history.json`,
`events.jsonl`, a stereo recording and `timeline.html`. This module owns the events file format
(one JSON object per session event, times relative to the start of the conversation) and builds
the `Timeline` model from the history plus those events, so the page can be regenerated from
the files alone (`build_timeline(load_history(p), load_events(q))`).

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

from vocalis.app.reports.timeline import (
    Timeline,
    TimelineMessage,
    TimelineState,
    TimelineTool,
    TimelineTurn,
    render_html,
)
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


# ---------------------------------------------------------------------- timeline building
def _num(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _states(events: Sequence[dict[str, Any]], end_s: float) -> list[TimelineState]:
    changes = [
        (_num(e.get("at")) or _num(e.get("t")) or 0.0, str(e.get("new")))
        for e in events
        if e.get("type") == "agent_state_changed"
    ]
    states: list[TimelineState] = []
    for index, (at, state) in enumerate(changes):
        if state in ("initializing", "closed"):
            continue
        until = changes[index + 1][0] if index + 1 < len(changes) else end_s
        if until > at:
            states.append(TimelineState(state, at * 1000.0, until * 1000.0))
    return states


def _user_spans(
    events: Sequence[dict[str, Any]], utterances: Sequence[tuple[float, float]] | None
) -> list[tuple[float, float]]:
    """Caller speech (ms): the simulated caller's own record, else user speaking states."""
    if utterances is not None:
        return list(utterances)
    spans: list[tuple[float, float]] = []
    start: float | None = None
    for e in events:
        if e.get("type") != "user_state_changed":
            continue
        at = (_num(e.get("at")) or _num(e.get("t")) or 0.0) * 1000.0
        if e.get("new") == "speaking":
            start = at
        elif start is not None:
            spans.append((start, at))
            start = None
    return spans


def build_timeline(
    history: dict[str, Any],
    events: Sequence[dict[str, Any]],
    *,
    title: str = "vocalis conversation",
    caller_speech_ms: Sequence[tuple[float, float]] | None = None,
    notes: Sequence[str] = (),
) -> Timeline:
    """The timeline model from the history JSON and the event records.

    Positions: an agent message starts where its response's first audio played plus the
    playout of the earlier messages of that response (segments play back to back), a
    never-played one where it would have played (after the audio generated before it); a caller
    message takes the next span of caller speech; tool calls use their event times.
    """
    end_s = max((_num(e.get("t")) or 0.0 for e in events), default=0.0)
    trace_id = history.get("trace_id")
    timeline = Timeline(
        title=title,
        notes=list(notes),
        duration_ms=end_s * 1000.0,
        trace_id=trace_id if isinstance(trace_id, str) else None,
    )
    timeline.states = _states(events, end_s)

    # Per response: where its first audio played, and the order of its messages.
    message_start: dict[str, float] = {}
    turn_of_response: dict[str, int] = {}
    for e in events:
        if e.get("type") != "turn_metrics":
            continue
        response_id = str(e.get("response_id"))
        played_at = _num(e.get("first_audio_played_at"))
        user_end = _num(e.get("user_speech_end_at"))
        latency = _num(e.get("voice_to_voice_ms"))
        if latency is not None:
            # A turn the caller waited for (tool follow-ups continue the same turn).
            turn = TimelineTurn(
                len(timeline.turns) + 1,
                latency_ms=latency,
                first_audio_ms=_num(e.get("time_to_first_audio_ms")),
                at_ms=None if played_at is None else played_at * 1000.0,
                user_end_ms=None if user_end is None else user_end * 1000.0,
            )
            timeline.turns.append(turn)
            turn_of_response[response_id] = turn.index
        if played_at is None:
            continue
        # Heard segments play back to back; a never-played one is drawn where it would have
        # played: after all the audio generated for the message before it.
        offset = 0.0
        previous: tuple[float, float] | None = None  # (start, generated) of the one before
        for m in e.get("messages") or []:
            if not isinstance(m, dict) or "item_id" not in m:
                continue
            played = _num(m.get("played_ms")) or 0.0
            if played <= 0 and previous is not None:
                start = previous[0] + previous[1]
            else:
                start = played_at * 1000.0 + offset
            message_start[str(m["item_id"])] = start
            offset += played
            previous = (start, _num(m.get("generated_ms")) or played)

    tool_events: dict[str, TimelineTool] = {}
    for e in events:
        kind = e.get("type")
        call_id = str(e.get("call_id"))
        t_ms = (_num(e.get("t")) or 0.0) * 1000.0
        if kind == "tool_call_started":
            tool_events[call_id] = TimelineTool(
                call_id, str(e.get("name")), str(e.get("arguments", "")), start_ms=t_ms
            )
        elif kind == "tool_call_finished":
            tool = tool_events.setdefault(
                call_id, TimelineTool(call_id, str(e.get("name")), "", start_ms=None)
            )
            tool.output = str(e.get("output"))
            tool.is_error = bool(e.get("is_error"))
            tool.end_ms = t_ms
            duration = _num(e.get("duration_s"))
            if tool.start_ms is None and duration is not None:
                tool.start_ms = t_ms - duration * 1000.0

    speech = iter(_user_spans(events, caller_speech_ms))
    last_item_id: str | None = None
    tools: list[TimelineTool] = []
    for item in history.get("items", []):
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        item_id = str(item.get("id"))
        if kind == "message":
            role = str(item.get("role"))
            message = TimelineMessage(
                item_id,
                role,
                str(item.get("text") or ""),
                generated_text=item.get("generated_text"),
                interrupted=bool(item.get("interrupted")),
                played_ms=_num(item.get("played_ms")),
                generated_ms=_num(item.get("generated_ms")),
                response_id=item.get("response_id"),
            )
            if role == "user":
                span = next(speech, None)
                if span is not None:
                    message.start_ms, message.end_ms = span
            elif role == "assistant":
                message.start_ms = message_start.get(item_id)
                if message.response_id is not None:
                    message.turn = turn_of_response.get(message.response_id)
            timeline.messages.append(message)
            last_item_id = item_id
        elif kind == "function_call":
            call_id = str(item.get("call_id"))
            if call_id in tool_events:
                tool = tool_events.pop(call_id)
            else:
                tool = TimelineTool(call_id, str(item.get("name")), "")
            tool.name = str(item.get("name") or tool.name)
            tool.arguments = str(item.get("arguments") or tool.arguments)
            tool.item_id = item_id
            tool.after_item_id = last_item_id
            tools.append(tool)
        elif kind == "function_call_output":
            call_id = str(item.get("call_id"))
            for tool in tools:
                if tool.call_id == call_id and tool.output is None:
                    tool.output = str(item.get("output"))
                    tool.is_error = bool(item.get("is_error"))
    # Calls seen only in events (e.g. history written before their item landed).
    tools += tool_events.values()
    timeline.tools = tools
    _add_never_played(timeline, events, message_start)
    return timeline


def _add_never_played(
    timeline: Timeline, events: Sequence[dict[str, Any]], starts: dict[str, float]
) -> None:
    """Messages the caller never heard are deleted from the history (nothing was heard), but
    the page should still show that the model generated them — and what it said: take them
    (with their `generated_text`) from the metrics and place each after the last message of
    its response."""
    known = {m.item_id for m in timeline.messages}
    for e in events:
        if e.get("type") != "turn_metrics":
            continue
        response_id = e.get("response_id")
        for m in e.get("messages") or []:
            if not isinstance(m, dict) or m.get("item_id") in known:
                continue
            if (_num(m.get("played_ms")) or 0.0) > 0:
                continue
            generated = m.get("generated_text")
            message = TimelineMessage(
                str(m.get("item_id")),
                "assistant",
                "",
                generated_text=generated if isinstance(generated, str) and generated else None,
                interrupted=True,
                played_ms=0.0,
                generated_ms=_num(m.get("generated_ms")),
                response_id=None if response_id is None else str(response_id),
                start_ms=starts.get(str(m.get("item_id"))),
            )
            same = [
                i
                for i, other in enumerate(timeline.messages)
                if other.response_id is not None and other.response_id == message.response_id
            ]
            timeline.messages.insert(same[-1] + 1 if same else len(timeline.messages), message)
            known.add(message.item_id)
