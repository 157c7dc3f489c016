"""Text for the timeline page: escaping, clipping, and how times and durations read."""

from __future__ import annotations

import html


def escape(text: object) -> str:
    return html.escape(str(text), quote=True)


def clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def fmt_at(ms: float | None) -> str:
    """A position on the conversation timeline (seconds from the start)."""
    return "?" if ms is None else f"{ms / 1000:.2f} s"


def fmt_ms(ms: float | None) -> str:
    if ms is None:
        return "?"
    return f"{ms / 1000:.2f} s" if ms >= 10000 else f"{ms:.0f} ms"
