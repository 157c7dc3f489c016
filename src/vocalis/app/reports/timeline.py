"""`timeline.html`: one self-contained page that shows what was generated vs what was heard.

Why: the history JSON is the proof of the heard contract, but nobody reads JSON to understand a
barge-in. This page draws, per message, the audio the model generated next to the audio the
caller actually heard, where it was cut, the tool calls and the latency of each turn — on one
time axis, plus a card per message with the heard text and the unheard rest struck through.

Self-contained on purpose: inline CSS and SVG, no script, no font or CDN, so it opens from a
CI artifact or an e-mail attachment and renders the same headless.

Two steps, so each can be tested alone: `Timeline` is a plain model (built by
`vocalis.app.reports.timeline_build.build_timeline` from the history and events files),
`render_html()` turns it into the page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from vocalis.app.reports.html_text import escape as _e
from vocalis.app.reports.html_text import fmt_at as _fmt_at
from vocalis.app.reports.html_text import fmt_ms as _fmt_ms

Status = Literal["played", "interrupted", "never played", "text"]


def unheard_part(heard: str, generated: str) -> str:
    """The words of `generated` after the `heard` prefix (the timeline page and the live view
    both show them struck through, so both cut them here)."""
    if generated.startswith(heard):
        return generated[len(heard) :].strip()
    # Heard text normalised differently (spacing): cut by word count instead.
    return " ".join(generated.split()[len(heard.split()) :])


@dataclass(slots=True)
class TimelineMessage:
    item_id: str
    role: str
    text: str
    # What the model generated when it differs from what was heard (interrupted messages).
    generated_text: str | None = None
    interrupted: bool = False
    played_ms: float | None = None
    generated_ms: float | None = None
    # Position on the conversation timeline (ms from the start); None when unknown.
    start_ms: float | None = None
    end_ms: float | None = None
    response_id: str | None = None
    turn: int | None = None

    @property
    def status(self) -> Status:
        if self.role != "assistant" or self.played_ms is None:
            return "text"
        if not self.interrupted:
            return "played"
        return "interrupted" if self.played_ms > 0 else "never played"

    @property
    def unheard_text(self) -> str:
        """The generated words the caller never heard (empty unless cut)."""
        generated = self.generated_text
        if not generated or self.status not in ("interrupted", "never played"):
            return ""
        return unheard_part(self.text, generated)


@dataclass(slots=True)
class TimelineTool:
    call_id: str
    name: str
    arguments: str
    output: str | None = None
    is_error: bool = False
    start_ms: float | None = None
    end_ms: float | None = None
    item_id: str | None = None
    # The history item this call follows (its card is drawn right after that message).
    after_item_id: str | None = None


@dataclass(slots=True)
class TimelineTurn:
    index: int
    # End of the caller's speech → first played frame of the answer (what the caller feels).
    latency_ms: float | None = None
    # Provider time to first audio byte.
    first_audio_ms: float | None = None
    # Where the turn's answer started playing (ms from the start), for the latency marker.
    at_ms: float | None = None
    user_end_ms: float | None = None


@dataclass(slots=True)
class TimelineState:
    state: str
    start_ms: float
    end_ms: float


@dataclass(slots=True)
class Timeline:
    title: str = "vocalis conversation"
    messages: list[TimelineMessage] = field(default_factory=list)
    tools: list[TimelineTool] = field(default_factory=list)
    turns: list[TimelineTurn] = field(default_factory=list)
    states: list[TimelineState] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    duration_ms: float | None = None
    # The call's OpenTelemetry trace id, when it was traced (shown to find it in a backend).
    trace_id: str | None = None

    def span_ms(self) -> float:
        ends = [self.duration_ms or 0.0]
        for m in self.messages:
            if m.start_ms is not None:
                ends.append(m.end_ms or m.start_ms + max(m.generated_ms or 0, m.played_ms or 0))
        ends += [t.end_ms or t.start_ms or 0.0 for t in self.tools]
        ends += [s.end_ms for s in self.states]
        return max(1000.0, *ends)


# ---------------------------------------------------------------------- rendering helpers
_CSS = """
:root { --caller:#2563eb; --agent:#0891b2; --heard:#0e7490; --cut:#dc2626; --tool:#ca8a04;
  --muted:#6b7280; --bg:#f8fafc; --card:#ffffff; --line:#e5e7eb; }
* { box-sizing:border-box; }
body { margin:0; padding:24px; background:var(--bg); color:#111827;
  font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif; }
h1 { font-size:20px; margin:0 0 4px; } h2 { font-size:16px; margin:28px 0 10px; }
.sub { color:var(--muted); margin:0 0 16px; }
.summary { display:flex; flex-wrap:wrap; gap:10px; margin:12px 0 4px; }
.stat { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:8px 12px; }
.stat b { display:block; font-size:18px; }
.map { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:8px;
  overflow-x:auto; }
.legend { display:flex; flex-wrap:wrap; gap:14px; color:var(--muted); font-size:12px;
  margin:6px 0 0; }
.legend i { display:inline-block; width:14px; height:10px; margin-right:4px;
  vertical-align:middle; border-radius:2px; }
.msgs { display:flex; flex-direction:column; gap:8px; }
.msg { background:var(--card); border:1px solid var(--line); border-left:4px solid var(--muted);
  border-radius:8px; padding:10px 12px; }
.msg.user { border-left-color:var(--caller); }
.msg.assistant { border-left-color:var(--agent); }
.msg.interrupted, .msg.never { border-left-color:var(--cut); }
.msg.tool { border-left-color:var(--tool); }
.head { display:flex; flex-wrap:wrap; align-items:center; gap:8px; margin-bottom:4px; }
.role { font-weight:600; text-transform:capitalize; }
.id { color:var(--muted); font:12px ui-monospace,SFMono-Regular,Menlo,monospace; }
.badge { border-radius:999px; padding:1px 8px; font-size:12px; font-weight:600; }
.badge.played { background:#dcfce7; color:#166534; }
.badge.interrupted { background:#fee2e2; color:#991b1b; }
.badge.never { background:#fae8ff; color:#86198f; }
.badge.text { background:#e0e7ff; color:#3730a3; }
.badge.tool { background:#fef9c3; color:#854d0e; }
.badge.latency { background:#f1f5f9; color:#334155; }
.unheard { color:var(--muted); text-decoration:line-through; }
.empty { color:var(--muted); font-style:italic; }
code, pre { font:12px ui-monospace,SFMono-Regular,Menlo,monospace; }
pre { white-space:pre-wrap; margin:4px 0 0; background:#f8fafc; padding:6px 8px;
  border-radius:6px; }
.notes { color:#991b1b; }
"""


def _bar(msg: TimelineMessage) -> str:
    """A small generated-vs-played bar for a message card."""
    generated = max(msg.generated_ms or 0.0, msg.played_ms or 0.0)
    if generated <= 0:
        return ""
    width = 320
    played_w = round(width * (msg.played_ms or 0.0) / generated, 1)
    cut = ""
    if msg.status == "interrupted":
        cut = (
            f'<line x1="{played_w}" y1="0" x2="{played_w}" y2="12" '
            'stroke="#dc2626" stroke-width="2"/>'
        )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="12" '
        f'aria-label="played {msg.played_ms or 0:.0f} of {generated:.0f} ms">'
        f'<rect x="0" y="1" width="{width}" height="10" rx="2" fill="#ffffff" stroke="#0891b2" '
        'stroke-dasharray="3 2"/>'
        f'<rect x="0" y="1" width="{played_w}" height="10" rx="2" fill="#0e7490"/>{cut}</svg>'
    )


def _badge(msg: TimelineMessage) -> str:
    status = msg.status
    if status == "played":
        return f'<span class="badge played">played {_fmt_ms(msg.played_ms)}</span>'
    if status == "interrupted":
        return f'<span class="badge interrupted">interrupted at {_fmt_ms(msg.played_ms)}</span>'
    if status == "never played":
        return '<span class="badge never">never played</span>'
    return '<span class="badge text">text</span>'


def _message_card(msg: TimelineMessage, latency: TimelineTurn | None) -> str:
    css = {"interrupted": " interrupted", "never played": " never"}.get(msg.status, "")
    heard = _e(msg.text) if msg.text else '<span class="empty">(nothing heard)</span>'
    unheard = msg.unheard_text
    body = heard + (f' <span class="unheard">{_e(unheard)}</span>' if unheard else "")
    extra = []
    if msg.role == "assistant" and msg.generated_ms is not None:
        extra.append(
            f'<span class="id">{_fmt_ms(msg.played_ms)} heard / '
            f"{_fmt_ms(msg.generated_ms)} generated</span>"
        )
    if latency is not None and latency.latency_ms is not None:
        extra.append(
            f'<span class="badge latency">turn {latency.index}: '
            f"{_fmt_ms(latency.latency_ms)} to first audio</span>"
        )
    at = ""
    if msg.start_ms is not None:
        # A never-played message has no time it played, only the time it was due.
        when = "due at" if msg.status == "never played" else "at"
        at = f'<span class="id">{when} {_fmt_at(msg.start_ms)}</span>'
    return (
        f'<section class="msg {_e(msg.role)}{css}" data-item-id="{_e(msg.item_id)}" '
        f'data-status="{_e(msg.status)}">'
        f'<div class="head"><span class="role">{"caller" if msg.role == "user" else _e(msg.role)}'
        f"</span>{_badge(msg) if msg.role == 'assistant' else ''}{at}"
        f'<span class="id">{_e(msg.item_id)}</span>{"".join(extra)}</div>'
        f'<div class="text">{body}</div>{_bar(msg)}</section>'
    )


def _tool_card(tool: TimelineTool) -> str:
    badge = "error" if tool.is_error else "tool call"
    output = "" if tool.output is None else f"<pre>→ {_e(tool.output)}</pre>"
    at = f'<span class="id">at {_fmt_at(tool.start_ms)}</span>' if tool.start_ms is not None else ""
    took = (
        f'<span class="id">took {_fmt_ms(tool.end_ms - tool.start_ms)}</span>'
        if tool.start_ms is not None and tool.end_ms is not None
        else ""
    )
    return (
        f'<section class="msg tool" data-call-id="{_e(tool.call_id)}">'
        f'<div class="head"><span class="role">tool</span>'
        f'<span class="badge tool">{badge}</span>{at}{took}'
        f'<span class="id">{_e(tool.call_id)}</span></div>'
        f"<code>{_e(tool.name)}({_e(tool.arguments)})</code>{output}</section>"
    )


def _summary(tl: Timeline) -> str:
    agent = [m for m in tl.messages if m.role == "assistant"]
    latencies = [t.latency_ms for t in tl.turns if t.latency_ms is not None]
    stats = [
        ("messages", str(len(tl.messages))),
        ("agent messages played", str(sum(m.status == "played" for m in agent))),
        ("interrupted", str(sum(m.status == "interrupted" for m in agent))),
        ("never played", str(sum(m.status == "never played" for m in agent))),
        ("tool calls", str(len(tl.tools))),
    ]
    if latencies:
        stats.append(("median turn latency", _fmt_ms(sorted(latencies)[len(latencies) // 2])))
    return (
        '<div class="summary">'
        + "".join(f'<div class="stat"><b>{_e(value)}</b>{_e(name)}</div>' for name, value in stats)
        + "</div>"
    )


def render_html(tl: Timeline) -> str:
    """The whole page as one string (UTF-8, no external resources)."""
    # The map module draws this module's model types: imported here, not at the top.
    from vocalis.app.reports.timeline_svg import svg_map

    turns = {t.index: t for t in tl.turns}
    shown_turns: set[int] = set()
    tools_after: dict[str | None, list[TimelineTool]] = {}
    for tool in tl.tools:
        tools_after.setdefault(tool.after_item_id, []).append(tool)
    # Tool calls that the history places before any message come first.
    cards: list[str] = [_tool_card(t) for t in tools_after.pop(None, [])]
    for msg in tl.messages:
        latency = None
        if msg.role == "assistant" and msg.turn is not None and msg.turn not in shown_turns:
            latency = turns.get(msg.turn)
            shown_turns.add(msg.turn)
        cards.append(_message_card(msg, latency))
        cards += [_tool_card(t) for t in tools_after.pop(msg.item_id, [])]
    for rest in tools_after.values():
        cards += [_tool_card(t) for t in rest]
    notes = "".join(f"<li>{_e(n)}</li>" for n in tl.notes)
    legend = (
        '<div class="legend"><span><i style="background:#2563eb"></i>caller speech</span>'
        '<span><i style="background:#0e7490"></i>agent audio heard</span>'
        '<span><i style="border:1px dashed #0891b2;background:#fff"></i>agent audio generated'
        '</span><span><i style="border:1px dashed #a21caf;background:#fff"></i>never played'
        '</span><span><i style="background:#dc2626"></i>truncation point</span>'
        '<span><i style="background:#ca8a04"></i>tool call</span>'
        '<span><i style="background:#a5f3fc"></i>speaking</span>'
        '<span><i style="background:#fde68a"></i>thinking</span>'
        '<span><i style="background:#bbf7d0"></i>listening</span></div>'
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(tl.title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{_e(tl.title)}</h1>"
        '<p class="sub">What the model generated vs what the caller heard. '
        "The history keeps only the heard part; cut messages were truncated on the provider.</p>"
        + (
            f'<p class="sub">trace id <code data-trace-id="{_e(tl.trace_id)}">{_e(tl.trace_id)}'
            "</code></p>"
            if tl.trace_id
            else ""
        )
        + f"{_summary(tl)}"
        + (f'<ul class="notes">{notes}</ul>' if notes else "")
        + f'<h2>Timeline</h2><div class="map">{svg_map(tl)}{legend}</div>'
        f'<h2>Conversation</h2><div class="msgs">{"".join(cards)}</div>' + "</body></html>\n"
    )
