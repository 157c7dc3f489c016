"""What the simulated Gemini server keeps in its session history.

The point of this model is the interruption rule, because the real service cannot be asked:
Gemini Live has no truncate and no delete, generates faster than real time, and when the
caller barges in it keeps the model turn as it was **sent** — every audio chunk already on
the wire and the words that audio speaks — not as it was *heard*. The sim records exactly
that: a model turn grows chunk by chunk as audio is sent, and an interruption freezes it
(``interrupted=True``) with everything sent so far. A word belongs to the sent text once the
first millisecond of its audio was sent (its token was generated).

History only grows (client content, caller turns, model turns, tool responses); a fresh
session starts empty or from a resumption snapshot. Tests read :meth:`GeminiHistory.summary`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Literal

from vocalis.sim.conversation import WordSpan
from vocalis.sim.gemini.messages import audio_tokens, text_tokens

Role = Literal["user", "model"]
PartKind = Literal["text", "audio", "function_call", "function_response"]
TurnSource = Literal["realtime", "client_content", "generated", "tool_response"]


@dataclass(slots=True)
class HistoryPart:
    """One part of a turn. ``text`` of an audio part is its transcript (what it says)."""

    kind: PartKind
    text: str = ""
    audio_ms: float = 0.0
    call_id: str | None = None
    name: str | None = None
    args: dict[str, Any] | None = None
    response: dict[str, Any] | None = None
    # Model audio only: the word spans of the speech being sent (to grow ``text``).
    words: tuple[WordSpan, ...] = ()

    def grow_audio(self, sent_ms: float) -> None:
        """The part's audio now reaches ``sent_ms``: its text is every word begun by then."""
        self.audio_ms = sent_ms
        self.text = "".join(w.text for w in self.words if w.start_ms < sent_ms).strip()

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        if self.kind in ("text", "audio"):
            out["text"] = self.text
        if self.kind == "audio":
            out["audio_ms"] = round(self.audio_ms, 1)
        if self.kind in ("function_call", "function_response"):
            out["id"] = self.call_id
            out["name"] = self.name
        if self.kind == "function_call":
            out["args"] = self.args
        if self.kind == "function_response":
            out["response"] = self.response
        return out


@dataclass(slots=True)
class HistoryTurn:
    role: Role
    source: TurnSource
    parts: list[HistoryPart] = field(default_factory=list)
    interrupted: bool = False

    @property
    def text(self) -> str:
        """The turn's words: text parts and audio transcripts, joined by single spaces."""
        pieces = [p.text for p in self.parts if p.kind in ("text", "audio") and p.text]
        return " ".join(pieces)

    def tokens(self) -> tuple[int, int]:
        """(audio tokens, text tokens) this turn adds to the prompt of later turns."""
        audio = sum(audio_tokens(p.audio_ms) for p in self.parts if p.kind == "audio")
        text = sum(
            text_tokens(p.text if p.kind == "text" else repr(p.args or p.response or {}))
            for p in self.parts
            if p.kind != "audio"
        )
        return audio, text

    def summary(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "source": self.source,
            "text": self.text,
            "interrupted": self.interrupted,
            "parts": [p.summary() for p in self.parts],
        }


class GeminiHistory:
    """The ordered turns of one Gemini session (append-only, like the service's)."""

    def __init__(self, turns: list[HistoryTurn] | None = None) -> None:
        self.turns: list[HistoryTurn] = turns if turns is not None else []

    def append(self, turn: HistoryTurn) -> HistoryTurn:
        self.turns.append(turn)
        return turn

    def snapshot(self) -> GeminiHistory:
        """An independent copy (resumption handles point at these)."""
        return GeminiHistory(copy.deepcopy(self.turns))

    def prompt_tokens(self) -> tuple[int, int]:
        """(audio, text) tokens of the whole history: the prompt of the next model turn."""
        audio = text = 0
        for turn in self.turns:
            a, t = turn.tokens()
            audio += a
            text += t
        return audio, text

    def summary(self) -> list[dict[str, Any]]:
        """Audio-free view for assertions: role, source, text, interrupted, parts."""
        return [turn.summary() for turn in self.turns]

    def texts(self) -> list[tuple[Role, str]]:
        """``(role, text)`` of every turn with words, in order (the conversation as read)."""
        return [(turn.role, turn.text) for turn in self.turns if turn.text]
