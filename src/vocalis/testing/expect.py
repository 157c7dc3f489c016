"""Assertions over what happened in a test call: tools, words said, words heard, cuts.

Why a module of its own: a failing agent test must say what *did* happen (the tool calls, the
messages as generated and as heard), not just `assert False`. Every `expect_*` method raises
`AssertionError` with that summary, and returns what it matched so a test can look further.

`Transcript` is the view over one window of a call (a turn, or the whole call): built from the
session's typed events and its heard history, never from private runtime state.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from vocalis.conversation.items import (
    ConversationItem,
    FunctionCallItem,
    FunctionCallOutputItem,
    MessageItem,
)
from vocalis.runtime.events import Interrupted, SessionEvent, ToolCallFinished, ToolCallStarted

Role = Literal["user", "assistant"]


@dataclass(frozen=True, slots=True)
class ToolCallRecord:
    """One tool call in a test call: what the model asked and what the tool answered."""

    call_id: str
    name: str
    arguments: dict[str, Any]
    output: str | None
    is_error: bool

    @property
    def result(self) -> Any:
        """The output parsed as JSON (the raw string when it is not JSON)."""
        if self.output is None:
            return None
        try:
            return json.loads(self.output)
        except json.JSONDecodeError:
            return self.output


@dataclass(frozen=True, slots=True)
class SpokenMessage:
    """One assistant message: the text the model generated and the part the caller heard."""

    item_id: str
    said: str
    heard: str
    interrupted: bool
    played_ms: float | None


def _arguments(raw: str) -> dict[str, Any]:
    try:
        value = json.loads(raw) if raw.strip() else {}
    except json.JSONDecodeError:
        return {"<unparsed>": raw}
    return value if isinstance(value, dict) else {"<value>": value}


class Transcript:
    """What happened in a window of a call, with `expect_*` assertions over it."""

    def __init__(self, events: Sequence[SessionEvent], items: Sequence[ConversationItem]) -> None:
        self.events: tuple[SessionEvent, ...] = tuple(events)
        self.items: tuple[ConversationItem, ...] = tuple(items)

    # ------------------------------------------------------------------ views

    @property
    def tool_calls(self) -> list[ToolCallRecord]:
        finished = {e.call_id: e for e in self.events if isinstance(e, ToolCallFinished)}
        calls = []
        for event in self.events:
            if isinstance(event, ToolCallStarted):
                done = finished.get(event.call_id)
                calls.append(
                    ToolCallRecord(
                        call_id=event.call_id,
                        name=event.name,
                        arguments=_arguments(event.arguments),
                        output=done.output if done else None,
                        is_error=done.is_error if done else False,
                    )
                )
        return calls

    @property
    def messages(self) -> list[SpokenMessage]:
        """Assistant messages of the window, in conversation order."""
        return [
            SpokenMessage(
                item_id=item.id,
                said=item.generated_text if item.generated_text is not None else item.text,
                heard=item.text,
                interrupted=item.interrupted,
                played_ms=item.played_ms,
            )
            for item in self.items
            if isinstance(item, MessageItem) and item.role == "assistant"
        ]

    @property
    def interruptions(self) -> list[Interrupted]:
        return [e for e in self.events if isinstance(e, Interrupted)]

    def summary(self) -> str:
        """One line per item: how a failing assertion shows the call."""
        lines = []
        for item in self.items:
            if isinstance(item, MessageItem):
                cut = f"  [cut at {item.played_ms:.0f} ms]" if item.interrupted else ""
                lines.append(f"  {item.role:9} {item.text!r}{cut}")
            elif isinstance(item, FunctionCallItem):
                lines.append(f"  tool call {item.name}({item.arguments})")
            elif isinstance(item, FunctionCallOutputItem):
                flag = " (error)" if item.is_error else ""
                lines.append(f"  output    {item.output}{flag}")
        return "\n".join(lines) if lines else "  (nothing happened)"

    def _fail(self, message: str) -> AssertionError:
        return AssertionError(f"{message}\nwhat happened:\n{self.summary()}")

    # ------------------------------------------------------------------ assertions

    def expect_tool_call(self, name: str, /, **arguments: Any) -> ToolCallRecord:
        """A call of `name` whose arguments include `arguments` (equal values)."""
        for call in self.tool_calls:
            if call.name == name and all(
                call.arguments.get(k, _MISSING) == v for k, v in arguments.items()
            ):
                return call
        wanted = ", ".join(f"{k}={v!r}" for k, v in arguments.items())
        raise self._fail(f"expected a call {name}({wanted})")

    def expect_no_tool_call(self, name: str | None = None) -> None:
        calls = [c for c in self.tool_calls if name is None or c.name == name]
        if calls:
            raise self._fail(f"expected no call{' of ' + name if name else ''}")

    def expect_said(self, text: str) -> SpokenMessage:
        """An assistant message whose *generated* text contains `text` (case-insensitive)."""
        for message in self.messages:
            if text.lower() in message.said.lower():
                return message
        raise self._fail(f"expected the agent to say {text!r}")

    def expect_heard(self, text: str) -> SpokenMessage:
        """An assistant message whose *heard* text (what played) contains `text`."""
        for message in self.messages:
            if text.lower() in message.heard.lower():
                return message
        raise self._fail(f"expected the caller to hear {text!r}")

    def expect_not_heard(self, text: str) -> None:
        for message in self.messages:
            if text.lower() in message.heard.lower():
                raise self._fail(f"expected the caller not to hear {text!r}")

    def expect_interrupted(
        self, *, at_ms: float | None = None, tolerance_ms: float = 20.0
    ) -> SpokenMessage:
        """An assistant message cut by a barge-in (at `at_ms` of its audio, ± one frame)."""
        cut = [m for m in self.messages if m.interrupted]
        for message in cut:
            played = message.played_ms or 0.0
            if at_ms is None or abs(played - at_ms) <= tolerance_ms:
                return message
        where = "" if at_ms is None else f" at {at_ms:g} ms (±{tolerance_ms:g})"
        raise self._fail(f"expected an interrupted message{where}")

    def expect_history(self, expected: Sequence[tuple[Role, str]]) -> None:
        """The messages, as heard, equal `expected` exactly: [(role, text), ...]."""
        actual = [
            (item.role, item.text)
            for item in self.items
            if isinstance(item, MessageItem) and item.role in ("user", "assistant")
        ]
        if actual != list(expected):
            raise self._fail(f"history differs:\n  expected {list(expected)}\n  actual   {actual}")


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING = _Missing()
