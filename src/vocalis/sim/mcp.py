"""MCP tools, simulated from the scenario: tool listing, calls and approvals (sans-I/O).

Why: a realtime session may declare ``type: "mcp"`` tools; the real server then lists the MCP
server's tools (``mcp_list_tools.*`` and an ``mcp_list_tools`` item), runs calls as
``mcp_call`` items (``response.mcp_call_arguments.*``, ``response.mcp_call.in_progress`` /
``completed`` / ``failed``), and, for tools that require approval (the API's default), first
asks the client with an ``mcp_approval_request`` item that the client answers with an
``mcp_approval_response`` item. The scenario's ``mcp_servers`` say what each server lists and
returns, so clients can be tested against all of it offline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vocalis.sim.conversation import Item
from vocalis.sim.scenario import McpServerSpec, McpToolSpec, Scenario

Event = dict[str, Any]


@dataclass(frozen=True, slots=True)
class PlannedMcpCall:
    """An MCP tool call a response will run (after an approval, when one was needed)."""

    name: str
    server_label: str
    arguments: str
    output: str | None
    error: str | None
    approval_request_id: str | None = None


@dataclass(frozen=True, slots=True)
class PlannedMcpApproval:
    """An approval request a response will carry instead of the call."""

    name: str
    server_label: str
    arguments: str


def mcp_tools(tools: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The session's ``mcp`` tools by server label."""
    return {t["server_label"]: t for t in tools if t.get("type") == "mcp"}


def needs_approval(tool_config: dict[str, Any], name: str) -> bool:
    """Whether a call of ``name`` needs the client's approval (``always`` is the default)."""
    rule = tool_config.get("require_approval", "always")
    if rule in ("always", None):
        return True
    if rule == "never":
        return False
    if isinstance(rule, dict):
        never = (rule.get("never") or {}).get("tool_names") or []
        always = (rule.get("always") or {}).get("tool_names") or []
        return name in always or name not in never
    return True


def server_spec(scenario: Scenario, label: str) -> McpServerSpec | None:
    return next((s for s in scenario.mcp_servers if s.server_label == label), None)


def tool_spec(server: McpServerSpec | None, name: str) -> McpToolSpec | None:
    if server is None:
        return None
    return next((t for t in server.tools if t.name == name), None)


def approval_decision(items: list[Item], name: str, label: str) -> tuple[str, bool] | None:
    """(request id, approved) of the newest answered approval request for this tool, if any."""
    answers = {i.approval_request_id: i for i in items if i.type == "mcp_approval_response"}
    for item in reversed(items):
        if item.type == "mcp_approval_request" and (item.name, item.server_label) == (
            name,
            label,
        ):
            answer = answers.get(item.id)
            if answer is not None:
                return item.id, bool(answer.approve)
            return None
    return None


def list_tools_events(
    scenario: Scenario, label: str, item: Item, previous: str | None
) -> list[Event]:
    """The events of listing one MCP server's tools (the item is already in the conversation)."""
    server = server_spec(scenario, label)
    added = item.to_wire()
    events: list[Event] = [
        {"type": "mcp_list_tools.in_progress", "item_id": item.id},
        {"type": "conversation.item.added", "previous_item_id": previous, "item": added},
    ]
    if server is None:
        events.append({"type": "mcp_list_tools.failed", "item_id": item.id})
        return events
    item.tools = [
        {"name": t.name, "description": t.description, "input_schema": t.input_schema}
        for t in server.tools
    ]
    events.append({"type": "mcp_list_tools.completed", "item_id": item.id})
    events.append(
        {"type": "conversation.item.done", "previous_item_id": previous, "item": item.to_wire()}
    )
    return events


def new_listings(
    before: list[dict[str, Any]], after: list[dict[str, Any]], new_id: Callable[[], str]
) -> list[Item]:
    """``mcp_list_tools`` items for the MCP servers a session update just added."""
    known = set(mcp_tools(before))
    return [
        Item(id=new_id(), type="mcp_list_tools", server_label=label)
        for label in mcp_tools(after)
        if label not in known
    ]


def mcp_item(planned: PlannedMcpCall | PlannedMcpApproval, item_id: str, response_id: str) -> Item:
    """The output item of a planned MCP call or approval request (arguments stream later)."""
    if isinstance(planned, PlannedMcpApproval):
        return Item(
            id=item_id,
            type="mcp_approval_request",
            name=planned.name,
            server_label=planned.server_label,
            arguments=planned.arguments,
            response_id=response_id,
        )
    return Item(
        id=item_id,
        type="mcp_call",
        status="in_progress",
        name=planned.name,
        server_label=planned.server_label,
        arguments="",
        approval_request_id=planned.approval_request_id,
        response_id=response_id,
    )


def call_result_events(
    item: Item, planned: PlannedMcpCall, scoped: Callable[[str], Event]
) -> list[Event]:
    """Arguments done, in progress, then completed (output) or failed (error).

    ``scoped(type)`` builds an event with the response id, item id and output index; the
    progress events carry no response id (the SDK's ResponseMcpCall* types).
    """
    done = {**scoped("response.mcp_call_arguments.done"), "arguments": item.arguments}

    def progress(kind: str) -> Event:
        event = scoped(kind)
        event.pop("response_id", None)
        return event

    events = [done, progress("response.mcp_call.in_progress")]
    if planned.error is not None:
        item.error = {"type": "tool_execution_error", "message": planned.error}
        events.append(progress("response.mcp_call.failed"))
    else:
        item.output = planned.output
        events.append(progress("response.mcp_call.completed"))
    return events
