"""What the simulated model answers: the scenario's script first, then a small default brain.

Decision order for each response (documented in ``docs/sim-server.md``):

1. ``instructions`` of the ``response.create`` that match ``say exactly|verbatim ...: <text>``
   (case-insensitive) -> speak exactly ``<text>``. This is how the runtime's ``say()`` works,
   and it does *not* consume a scripted response (so a greeting does not eat the script).
2. Out-of-band responses (``conversation: "none"``) -> the default brain, script untouched.
3. The next scripted response, with ``{output}`` (last tool output), ``{result[key]}`` (the
   output parsed as JSON) and ``{user}`` (last user text) filled in. Function calls naming a
   tool the response cannot use (not declared, or ``tool_choice: "none"``) are skipped.
4. The default brain: after a tool output, ``tool_followup``; after a user message with text,
   an echo (``"You said: ..."``); otherwise a round robin of built-in sentences.
"""

from __future__ import annotations

import json
import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from vocalis.sim.conversation import Item
from vocalis.sim.mcp import (
    PlannedMcpApproval,
    PlannedMcpCall,
    approval_decision,
    mcp_tools,
    needs_approval,
    server_spec,
    tool_spec,
)
from vocalis.sim.scenario import (
    FaultSpec,
    FunctionCallSpec,
    McpCallSpec,
    MessageSpec,
    ResponseSpec,
    Scenario,
)

_SAY_RE = re.compile(r"\bsay\s+(?:exactly|verbatim)\b[^:]*:\s*(.+)", re.IGNORECASE | re.DOTALL)
_PLACEHOLDER_RE = re.compile(r"\{(output|user|result)((?:\[[^\]{}]*\])*)\}")
_QUOTES = {'"': '"', "'": "'", "“": "”", "‘": "’"}


@dataclass(frozen=True, slots=True)
class PlannedMessage:
    text: str
    phase: str | None = None
    voice: str | None = None
    leading_silence_ms: int = 0


@dataclass(frozen=True, slots=True)
class PlannedCall:
    name: str
    arguments: str
    call_id: str | None = None
    phase: str | None = None


PlannedItem = PlannedMessage | PlannedCall | PlannedMcpCall | PlannedMcpApproval


@dataclass(frozen=True)
class ResponsePlan:
    """Everything a response will contain, decided before ``response.created``."""

    items: tuple[PlannedItem, ...]
    ordering: str = "sequential"
    faults: tuple[FaultSpec, ...] = ()
    source: str = "brain"
    notes: tuple[str, ...] = field(default_factory=tuple)


def say_exactly(instructions: str | None) -> str | None:
    """The text to speak verbatim when ``instructions`` ask for it, else ``None``."""
    if not instructions:
        return None
    match = _SAY_RE.search(instructions)
    if match is None:
        return None
    text = match.group(1).strip()
    if len(text) >= 2 and _QUOTES.get(text[0]) == text[-1]:
        text = text[1:-1].strip()
    return text or None


def _lookup(value: Any, path: str) -> Any:
    for key in re.findall(r"\[([^\]]*)\]", path):
        key = key.strip("'\"")
        if isinstance(value, list) and key.isascii() and key.lstrip("-").isdigit():
            value = value[int(key)]
        elif isinstance(value, dict):
            value = value[key]
        else:
            raise KeyError(key)
    return value


def render(template: str, *, output: str | None, user: str | None) -> str:
    """Fill ``{output}``, ``{result[...]}`` and ``{user}``; unknown placeholders stay as is."""

    def replace(match: re.Match[str]) -> str:
        name, path = match.group(1), match.group(2)
        try:
            if name == "output" and not path and output is not None:
                return output
            if name == "user" and not path and user is not None:
                return user
            if name == "result" and output is not None:
                return str(_lookup(json.loads(output), path))
        except (KeyError, IndexError, ValueError, TypeError):
            pass
        return match.group(0)

    return _PLACEHOLDER_RE.sub(replace, template)


def _last_tool_output(items: list[Item]) -> str | None:
    for item in reversed(items):
        if item.type == "function_call_output":
            return item.output
    return None


def _last_user_text(items: list[Item]) -> str | None:
    for item in reversed(items):
        if item.type == "message" and item.role == "user":
            return item.text or None
    return None


def _tool_names(tools: list[dict[str, Any]], tool_choice: Any) -> set[str]:
    if tool_choice == "none":
        return set()
    names = {t["name"] for t in tools if t.get("type") == "function" and "name" in t}
    if isinstance(tool_choice, dict) and tool_choice.get("type") == "function":
        return names & {tool_choice.get("name")}
    return names


class ScriptCursor:
    """How far a scenario's script has been consumed: the queue of scripted responses not yet
    used, whose ``user_transcript`` was already handed out, and the round robin position.

    One cursor per connection (``server.script_scope: connection``, each conversation plays
    the script from the top) or one shared by every connection of a server (``server``: a
    client that reconnects continues the script, and every scripted fault fires once per
    server). The cursor is mutated only from the server's event loop, so sharing needs no lock.
    """

    def __init__(self, scenario: Scenario) -> None:
        self.queue: deque[tuple[int, ResponseSpec]] = deque(enumerate(scenario.responses))
        self.round_robin = 0
        self.transcript_taken = -1


class Brain:
    """Per-session answer source over a :class:`ScriptCursor` (its own, or the server's)."""

    def __init__(self, scenario: Scenario, cursor: ScriptCursor | None = None) -> None:
        self._scenario = scenario
        self._cursor = cursor if cursor is not None else ScriptCursor(scenario)
        self._queue = self._cursor.queue

    @property
    def remaining(self) -> int:
        return len(self._queue)

    def take_user_transcript(self) -> str | None:
        """The scripted transcript of the audio turn just committed (head of the queue), once."""
        if not self._queue:
            return None
        index, spec = self._queue[0]
        if spec.user_transcript is None or index == self._cursor.transcript_taken:
            return None
        self._cursor.transcript_taken = index
        return spec.user_transcript

    def plan(
        self,
        *,
        instructions: str | None,
        out_of_band: bool,
        items: list[Item],
        tools: list[dict[str, Any]],
        tool_choice: Any,
    ) -> ResponsePlan:
        verbatim = say_exactly(instructions)
        if verbatim is not None:
            return ResponsePlan((PlannedMessage(verbatim),), source="say")
        output = _last_tool_output(items)
        user = _last_user_text(items)
        if not out_of_band and self._queue:
            index, spec = self._queue.popleft()
            return self._from_script(
                index, spec, tools, tool_choice, output=output, user=user, items=items
            )
        return self._default(items, output=output, user=user)

    def _plan_mcp(
        self, spec: McpCallSpec, tools: list[dict[str, Any]], items: list[Item]
    ) -> PlannedMcpCall | PlannedMcpApproval | str:
        """The call, its approval request, or why it is skipped (a note)."""
        servers = mcp_tools(tools)
        label = spec.server_label or (next(iter(servers)) if len(servers) == 1 else None)
        config = servers.get(label) if label is not None else None
        if label is None or config is None:
            return f"skipped mcp call {spec.name!r}: no mcp tool for that server"
        args = spec.arguments_json
        approval_id: str | None = None
        if needs_approval(config, spec.name):
            decision = approval_decision(items, spec.name, label)
            if decision is None:
                return PlannedMcpApproval(spec.name, label, args)
            approval_id, approved = decision
            if not approved:
                return f"skipped mcp call {spec.name!r}: the client denied approval"
        tool = tool_spec(server_spec(self._scenario, label), spec.name)
        if tool is None:
            error: str | None = f"Tool '{spec.name}' not found on MCP server '{label}'."
            return PlannedMcpCall(spec.name, label, args, None, error, approval_id)
        return PlannedMcpCall(spec.name, label, args, tool.output_text, tool.error, approval_id)

    def _from_script(
        self,
        index: int,
        spec: ResponseSpec,
        tools: list[dict[str, Any]],
        tool_choice: Any,
        *,
        output: str | None,
        user: str | None,
        items: list[Item],
    ) -> ResponsePlan:
        available = _tool_names(tools, tool_choice)
        planned: list[PlannedItem] = []
        notes: list[str] = []
        for item in spec.items:
            if isinstance(item, MessageSpec):
                text = render(item.text, output=output, user=user)
                planned.append(
                    PlannedMessage(text, item.phase, item.voice, item.leading_silence_ms)
                )
            elif isinstance(item, FunctionCallSpec):
                if item.name not in available:
                    notes.append(f"skipped call {item.name!r}: tool not available")
                    continue
                args = render(item.arguments_json, output=output, user=user)
                planned.append(PlannedCall(item.name, args, item.call_id, item.phase))
            elif isinstance(item, McpCallSpec):
                mcp = self._plan_mcp(item, tools, items)
                if isinstance(mcp, str):
                    notes.append(mcp)
                else:
                    planned.append(mcp)
        return ResponsePlan(
            tuple(planned), spec.ordering, tuple(spec.faults), f"script[{index}]", tuple(notes)
        )

    def _default(self, items: list[Item], *, output: str | None, user: str | None) -> ResponsePlan:
        brain = self._scenario.brain
        last = items[-1] if items else None
        if last is not None and last.type == "function_call_output":
            text = render(brain.tool_followup, output=output, user=user)
            return ResponsePlan((PlannedMessage(text),), source="brain:tool_followup")
        if brain.echo and last is not None and last.role == "user" and user:
            return ResponsePlan((PlannedMessage(brain.echo_prefix + user),), source="brain:echo")
        sentence = brain.sentences[self._cursor.round_robin % len(brain.sentences)]
        self._cursor.round_robin += 1
        return ResponsePlan((PlannedMessage(sentence),), source="brain:round_robin")
