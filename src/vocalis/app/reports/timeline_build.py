"""Build the `Timeline` model from a call's history JSON and event records.

Why a module of its own: the timeline must be rebuildable from the files alone
(`build_timeline(load_history(p), load_events(q))`), so its input is the JSON records, not
the live event objects. Each record is read exactly once, at the edge, into a small typed
value (`ResponseRecord`, `ToolRecord`, ...); every later step (turns and latencies, where
each message played, tool calls, never-played messages) works on those values, one function
per job, instead of re-reading dictionaries with `.get()` everywhere.

Positions: an agent message starts where its response's first audio played plus the playout
of the earlier messages of that response (segments play back to back), a never-played one
where it would have played (after the audio generated before it); a caller message takes the
next span of caller speech; tool calls use their event times.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vocalis.app.reports.timeline import (
    Timeline,
    TimelineMessage,
    TimelineState,
    TimelineTool,
    TimelineTurn,
)

__all__ = ["build_timeline"]


# ---------------------------------------------------------------------- typed records
def _num(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _s_to_ms(value: object) -> float | None:
    seconds = _num(value)
    return None if seconds is None else seconds * 1000.0


@dataclass(frozen=True, slots=True)
class MessageRecord:
    """One message of a response, from its `turn_metrics` record."""

    item_id: str
    played_ms: float
    generated_ms: float | None
    generated_text: str | None


@dataclass(frozen=True, slots=True)
class ResponseRecord:
    """One `turn_metrics` record: a response's latency and the playout of its messages."""

    response_id: str
    first_audio_played_ms: float | None
    user_speech_end_ms: float | None
    voice_to_voice_ms: float | None
    time_to_first_audio_ms: float | None
    messages: tuple[MessageRecord, ...]


@dataclass(frozen=True, slots=True)
class ToolRecord:
    kind: str  # "tool_call_started" | "tool_call_finished"
    call_id: str
    name: str
    at_ms: float
    arguments: str = ""
    output: str = ""
    is_error: bool = False
    duration_ms: float | None = None


def _message_record(m: Mapping[str, Any]) -> MessageRecord:
    generated = m.get("generated_text")
    return MessageRecord(
        item_id=str(m["item_id"]),
        played_ms=_num(m.get("played_ms")) or 0.0,
        generated_ms=_num(m.get("generated_ms")),
        generated_text=generated if isinstance(generated, str) and generated else None,
    )


def read_responses(events: Sequence[Mapping[str, Any]]) -> list[ResponseRecord]:
    return [
        ResponseRecord(
            response_id=str(e.get("response_id")),
            first_audio_played_ms=_s_to_ms(e.get("first_audio_played_at")),
            user_speech_end_ms=_s_to_ms(e.get("user_speech_end_at")),
            voice_to_voice_ms=_num(e.get("voice_to_voice_ms")),
            time_to_first_audio_ms=_num(e.get("time_to_first_audio_ms")),
            messages=tuple(
                _message_record(m)
                for m in e.get("messages") or []
                if isinstance(m, Mapping) and "item_id" in m
            ),
        )
        for e in events
        if e.get("type") == "turn_metrics"
    ]


def read_tools(events: Sequence[Mapping[str, Any]]) -> list[ToolRecord]:
    records = []
    for e in events:
        kind = e.get("type")
        if kind not in ("tool_call_started", "tool_call_finished"):
            continue
        duration = _num(e.get("duration_s"))
        records.append(
            ToolRecord(
                kind=str(kind),
                call_id=str(e.get("call_id")),
                name=str(e.get("name")),
                at_ms=(_num(e.get("t")) or 0.0) * 1000.0,
                arguments=str(e.get("arguments", "")),
                output=str(e.get("output")),
                is_error=bool(e.get("is_error")),
                duration_ms=None if duration is None else duration * 1000.0,
            )
        )
    return records


def _changes(events: Sequence[Mapping[str, Any]], kind: str) -> list[tuple[float, str]]:
    """(seconds, new state) of every `kind` state change."""
    return [
        (_num(e.get("at")) or _num(e.get("t")) or 0.0, str(e.get("new")))
        for e in events
        if e.get("type") == kind
    ]


# ---------------------------------------------------------------------- one job each
def states(changes: list[tuple[float, str]], end_s: float) -> list[TimelineState]:
    out: list[TimelineState] = []
    for index, (at, state) in enumerate(changes):
        if state in ("initializing", "closed"):
            continue
        until = changes[index + 1][0] if index + 1 < len(changes) else end_s
        if until > at:
            out.append(TimelineState(state, at * 1000.0, until * 1000.0))
    return out


def user_spans(
    changes: list[tuple[float, str]], utterances: Sequence[tuple[float, float]] | None
) -> list[tuple[float, float]]:
    """Caller speech (ms): the simulated caller's own record, else user speaking states."""
    if utterances is not None:
        return list(utterances)
    spans: list[tuple[float, float]] = []
    start: float | None = None
    for at, state in changes:
        if state == "speaking":
            start = at * 1000.0
        elif start is not None:
            spans.append((start, at * 1000.0))
            start = None
    return spans


def turns(responses: list[ResponseRecord]) -> tuple[list[TimelineTurn], dict[str, int]]:
    """The turns the caller waited for (tool follow-ups continue the same turn), and the turn
    number of each response that opened one."""
    out: list[TimelineTurn] = []
    of_response: dict[str, int] = {}
    for r in responses:
        if r.voice_to_voice_ms is None:
            continue
        turn = TimelineTurn(
            len(out) + 1,
            latency_ms=r.voice_to_voice_ms,
            first_audio_ms=r.time_to_first_audio_ms,
            at_ms=r.first_audio_played_ms,
            user_end_ms=r.user_speech_end_ms,
        )
        out.append(turn)
        of_response[r.response_id] = turn.index
    return out, of_response


def message_starts(responses: list[ResponseRecord]) -> dict[str, float]:
    """Where each message started playing; a never-played one where it would have played
    (after all the audio generated for the message before it)."""
    starts: dict[str, float] = {}
    for r in responses:
        if r.first_audio_played_ms is None:
            continue
        offset = 0.0
        previous: tuple[float, float] | None = None  # (start, generated) of the one before
        for m in r.messages:
            if m.played_ms <= 0 and previous is not None:
                start = previous[0] + previous[1]
            else:
                start = r.first_audio_played_ms + offset
            starts[m.item_id] = start
            offset += m.played_ms
            previous = (start, m.generated_ms or m.played_ms)
    return starts


def tools_from_events(records: list[ToolRecord]) -> dict[str, TimelineTool]:
    tools: dict[str, TimelineTool] = {}
    for r in records:
        if r.kind == "tool_call_started":
            tools[r.call_id] = TimelineTool(r.call_id, r.name, r.arguments, start_ms=r.at_ms)
            continue
        tool = tools.setdefault(r.call_id, TimelineTool(r.call_id, r.name, "", start_ms=None))
        tool.output, tool.is_error, tool.end_ms = r.output, r.is_error, r.at_ms
        if tool.start_ms is None and r.duration_ms is not None:
            tool.start_ms = r.at_ms - r.duration_ms
    return tools


@dataclass(slots=True)
class _Placement:
    """What placing the history's items needs, and what it collects."""

    speech: Iterator[tuple[float, float]]
    starts: dict[str, float]
    turn_of_response: dict[str, int]
    events_tools: dict[str, TimelineTool]
    messages: list[TimelineMessage]
    tools: list[TimelineTool]
    last_item_id: str | None = None

    def message(self, item: Mapping[str, Any]) -> None:
        item_id, role = str(item.get("id")), str(item.get("role"))
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
            span = next(self.speech, None)
            if span is not None:
                message.start_ms, message.end_ms = span
        elif role == "assistant":
            message.start_ms = self.starts.get(item_id)
            if message.response_id is not None:
                message.turn = self.turn_of_response.get(message.response_id)
        self.messages.append(message)
        self.last_item_id = item_id

    def call(self, item: Mapping[str, Any]) -> None:
        call_id = str(item.get("call_id"))
        tool = self.events_tools.pop(call_id, None) or TimelineTool(
            call_id, str(item.get("name")), ""
        )
        tool.name = str(item.get("name") or tool.name)
        tool.arguments = str(item.get("arguments") or tool.arguments)
        tool.item_id = str(item.get("id"))
        tool.after_item_id = self.last_item_id
        self.tools.append(tool)

    def output(self, item: Mapping[str, Any]) -> None:
        call_id = str(item.get("call_id"))
        for tool in self.tools:
            if tool.call_id == call_id and tool.output is None:
                tool.output = str(item.get("output"))
                tool.is_error = bool(item.get("is_error"))


def add_never_played(
    timeline: Timeline, responses: list[ResponseRecord], starts: dict[str, float]
) -> None:
    """Messages the caller never heard are deleted from the history (nothing was heard), but
    the page should still show that the model generated them — and what it said: take them
    (with their `generated_text`) from the metrics and place each after the last message of
    its response."""
    known = {m.item_id for m in timeline.messages}
    for r in responses:
        for m in r.messages:
            if m.item_id in known or m.played_ms > 0:
                continue
            message = TimelineMessage(
                m.item_id,
                "assistant",
                "",
                generated_text=m.generated_text,
                interrupted=True,
                played_ms=0.0,
                generated_ms=m.generated_ms,
                response_id=r.response_id,
                start_ms=starts.get(m.item_id),
            )
            same = [
                i
                for i, other in enumerate(timeline.messages)
                if other.response_id is not None and other.response_id == r.response_id
            ]
            timeline.messages.insert(same[-1] + 1 if same else len(timeline.messages), message)
            known.add(m.item_id)


# ---------------------------------------------------------------------- the builder
def build_timeline(
    history: Mapping[str, Any],
    events: Sequence[Mapping[str, Any]],
    *,
    title: str = "vocalis conversation",
    caller_speech_ms: Sequence[tuple[float, float]] | None = None,
    notes: Sequence[str] = (),
) -> Timeline:
    """The timeline model from the history JSON and the event records (module docstring)."""
    end_s = max((_num(e.get("t")) or 0.0 for e in events), default=0.0)
    trace_id = history.get("trace_id")
    timeline = Timeline(
        title=title,
        notes=list(notes),
        duration_ms=end_s * 1000.0,
        trace_id=trace_id if isinstance(trace_id, str) else None,
    )
    timeline.states = states(_changes(events, "agent_state_changed"), end_s)
    responses = read_responses(events)
    timeline.turns, turn_of_response = turns(responses)
    starts = message_starts(responses)
    place = _Placement(
        speech=iter(user_spans(_changes(events, "user_state_changed"), caller_speech_ms)),
        starts=starts,
        turn_of_response=turn_of_response,
        events_tools=tools_from_events(read_tools(events)),
        messages=timeline.messages,
        tools=[],
    )
    handlers = {"message": place.message, "function_call": place.call}
    handlers["function_call_output"] = place.output
    for item in history.get("items", []):
        if isinstance(item, Mapping) and item.get("type") in handlers:
            handlers[str(item["type"])](item)
    # Calls seen only in events (e.g. history written before their item landed).
    timeline.tools = place.tools + list(place.events_tools.values())
    add_never_played(timeline, responses, starts)
    return timeline
