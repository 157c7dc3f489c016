"""The timeline page's map: the whole conversation on one time axis, as inline SVG.

Lanes from top to bottom: the caller's speech, the agent's messages (the generated audio as
an outline, the heard part filled, a red cut where a barge-in stopped it), never-played
messages in a lane of their own (in the agent lane they would cover the answer that really
played there after the barge-in), tool calls, and the agent's state; a latency line under
each answer from the end of the caller's speech to the first audio played.
"""

from __future__ import annotations

from vocalis.app.reports.html_text import clip, escape, fmt_at, fmt_ms
from vocalis.app.reports.timeline import (
    Timeline,
    TimelineMessage,
    TimelineState,
    TimelineTool,
    TimelineTurn,
)

LANE_H = 34
LABEL_W = 70
SVG_W = 1100
_STATE_COLOR = {"listening": "#bbf7d0", "thinking": "#fde68a", "speaking": "#a5f3fc"}


class Axis:
    def __init__(self, span_ms: float) -> None:
        self.span_ms = span_ms
        self.width = SVG_W - LABEL_W - 10

    def x(self, ms: float) -> float:
        return round(LABEL_W + self.width * max(0.0, ms) / self.span_ms, 1)

    def w(self, ms: float) -> float:
        return round(max(1.5, self.width * max(0.0, ms) / self.span_ms), 1)


def tick_step(span_ms: float) -> float:
    for step in (250, 500, 1000, 2000, 5000, 10000, 30000, 60000):
        if span_ms / step <= 12:
            return step
    return 120000


def _grid(axis: Axis, lanes: dict[str, int], height: int) -> list[str]:
    parts = []
    tick = 0.0
    step = tick_step(axis.span_ms)
    while tick <= axis.span_ms:
        x = axis.x(tick)
        parts.append(
            f'<line x1="{x}" y1="18" x2="{x}" y2="{height - 6}" stroke="#eef2f7" />'
            f'<text x="{x}" y="12" text-anchor="middle" fill="#6b7280">{tick / 1000:g} s</text>'
        )
        tick += step
    for lane, top in lanes.items():
        parts.append(
            f'<text x="4" y="{top + 19}" fill="#374151" font-weight="600">{lane}</text>'
            f'<line x1="{LABEL_W}" y1="{top + LANE_H - 2}" x2="{SVG_W - 10}" '
            f'y2="{top + LANE_H - 2}" stroke="#e5e7eb" />'
        )
    return parts


def _state(axis: Axis, top: int, state: TimelineState) -> str:
    color = _STATE_COLOR.get(state.state, "#e5e7eb")
    return (
        f'<rect x="{axis.x(state.start_ms)}" y="{top + 8}" '
        f'width="{axis.w(state.end_ms - state.start_ms)}" height="14" fill="{color}">'
        f"<title>{escape(state.state)} {fmt_at(state.start_ms)}–{fmt_at(state.end_ms)}</title>"
        "</rect>"
    )


def _caller(axis: Axis, top: int, msg: TimelineMessage, start: float) -> str:
    length = (msg.end_ms or start + 500) - start
    return (
        f'<rect x="{axis.x(start)}" y="{top + 6}" width="{axis.w(length)}" '
        f'height="20" rx="3" fill="#2563eb" fill-opacity="0.8" '
        f'data-item-id="{escape(msg.item_id)}"><title>caller: {escape(msg.text)}</title></rect>'
    )


def _agent(axis: Axis, lanes: dict[str, int], msg: TimelineMessage, start: float) -> str:
    never = msg.status == "never played"
    top = lanes["unheard" if never else "agent"] + 6
    x0 = axis.x(start)
    generated = msg.generated_ms or msg.played_ms or 0.0
    played = msg.played_ms or 0.0
    title = f"{msg.status}: {fmt_ms(played)} heard of {fmt_ms(generated)} generated"
    said = msg.text or msg.unheard_text
    parts = [
        f'<g data-item-id="{escape(msg.item_id)}"><title>{escape(title)} — {escape(said)}</title>'
        f'<rect x="{x0}" y="{top}" width="{axis.w(generated)}" height="20" rx="3" '
        f'fill="#ffffff" stroke="{"#a21caf" if never else "#0891b2"}" '
        'stroke-dasharray="3 2" />'
    ]
    if played > 0:
        parts.append(
            f'<rect x="{x0}" y="{top}" width="{axis.w(played)}" height="20" rx="3" '
            'fill="#0e7490" fill-opacity="0.85" />'
        )
    if never:
        # Not a cut (nothing of it played): named inside its own generated outline.
        parts.append(
            f'<text x="{x0 + 3}" y="{top + 14}" fill="#86198f" font-style="italic">'
            f"never played: {escape(clip(said, 40))}</text>"
        )
    elif msg.status == "interrupted":
        xc = axis.x(start + played)
        parts.append(
            f'<line x1="{xc}" y1="{top - 4}" x2="{xc}" y2="{top + 24}" stroke="#dc2626" '
            f'stroke-width="2.5" /><text x="{xc + 3}" y="{top - 1}" fill="#dc2626" '
            f'font-weight="600">cut {fmt_ms(played)}</text>'
        )
    parts.append("</g>")
    return "".join(parts)


def _tool(axis: Axis, top: int, tool: TimelineTool, start: float) -> str:
    end = tool.end_ms if tool.end_ms is not None else start + 50
    return (
        f'<rect x="{axis.x(start)}" y="{top + 6}" width="{axis.w(end - start)}" '
        f'height="20" rx="3" fill="#ca8a04" fill-opacity="0.85">'
        f"<title>{escape(tool.name)}({escape(tool.arguments)}) → {escape(tool.output or '')}"
        f'</title></rect><text x="{axis.x(start) + 3}" y="{top + 20}" fill="#422006">'
        f"{escape(tool.name)}</text>"
    )


def _latency(axis: Axis, top: int, turn: TimelineTurn, at: float, latency: float) -> str:
    start = turn.user_end_ms if turn.user_end_ms is not None else at - latency
    return (
        f'<line x1="{axis.x(start)}" y1="{top + 30}" x2="{axis.x(at)}" y2="{top + 30}" '
        'stroke="#64748b" stroke-width="1.5" />'
        f'<text x="{axis.x(at) + 3}" y="{top + 33}" fill="#475569">{fmt_ms(latency)}</text>'
    )


def svg_map(tl: Timeline) -> str:
    """The conversation on one time axis: caller, agent (generated vs heard), tools, states."""
    axis = Axis(tl.span_ms())
    never_played = any(m.status == "never played" for m in tl.messages)
    names = ["caller", "agent"] + (["unheard"] if never_played else []) + ["tools", "state"]
    height = 24 + LANE_H * len(names) + 8
    lanes = {lane: 24 + i * LANE_H for i, lane in enumerate(names)}
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{SVG_W}" '
        f'height="{height}" viewBox="0 0 {SVG_W} {height}" '
        'aria-label="conversation timeline" font-family="system-ui,sans-serif" font-size="11">'
    ]
    parts += _grid(axis, lanes, height)
    parts += [_state(axis, lanes["state"], state) for state in tl.states]
    for msg in tl.messages:
        if msg.start_ms is not None and msg.role == "user":
            parts.append(_caller(axis, lanes["caller"], msg, msg.start_ms))
        elif msg.start_ms is not None:
            parts.append(_agent(axis, lanes, msg, msg.start_ms))
    parts += [
        _tool(axis, lanes["tools"], tool, tool.start_ms)
        for tool in tl.tools
        if tool.start_ms is not None
    ]
    parts += [
        _latency(axis, lanes["agent"], turn, turn.at_ms, turn.latency_ms)
        for turn in tl.turns
        if turn.at_ms is not None and turn.latency_ms is not None
    ]
    parts.append("</svg>")
    return "".join(parts)
