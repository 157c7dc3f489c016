"""MCP tools simulated from the scenario: listing, calls, failures and approvals."""

from __future__ import annotations

from typing import Any

from vocalis.sim.server import SimServer

from .conftest import Client, add_user_text, open_client
from .test_openai_sdk import _check

SCENARIO: dict[str, Any] = {
    "mcp_servers": [
        {
            "server_label": "weather",
            "tools": [
                {
                    "name": "forecast",
                    "description": "Forecast for a city",
                    "output": {"sky": "sun"},
                },
                {"name": "broken", "error": "upstream timeout"},
            ],
        }
    ],
    "responses": [
        {
            "items": [
                {"say": "Let me look."},
                {"mcp_call": "forecast", "arguments": {"city": "Oslo"}},
            ]
        },
        {"items": [{"mcp_call": "broken"}]},
    ],
}


def _mcp_tool(require_approval: Any) -> dict[str, Any]:
    return {
        "type": "mcp",
        "server_label": "weather",
        "server_url": "https://mcp.example/sse",
        "require_approval": require_approval,
    }


async def _declare(client: Client, *tools: dict[str, Any]) -> None:
    await client.send("session.update", session={"type": "realtime", "tools": list(tools)})
    await client.until("session.updated")


async def test_tools_are_listed_and_calls_run_without_approval() -> None:
    async with SimServer(scenario=SCENARIO) as server, open_client(server) as client:
        await _declare(client, _mcp_tool("never"))
        done = await client.until("mcp_list_tools.completed")
        listed = (await client.until("conversation.item.done"))["item"]
        assert listed["id"] == done["item_id"] and listed["type"] == "mcp_list_tools"
        assert [t["name"] for t in listed["tools"]] == ["forecast", "broken"]
        await add_user_text(client, "Weather in Oslo?")
        await client.send("response.create")
        first = await client.until("response.done")
        call = first["response"]["output"][1]
        assert call["type"] == "mcp_call" and call["output"] == '{"sky": "sun"}'
        assert call["arguments"] == '{"city": "Oslo"}'
        await client.send("response.create")
        failed = await client.until("response.done")
        assert failed["response"]["output"][0]["error"]["message"] == "upstream timeout"
        types = _check(client.events)
    assert {
        "mcp_list_tools.in_progress",
        "response.mcp_call_arguments.delta",
        "response.mcp_call_arguments.done",
        "response.mcp_call.in_progress",
        "response.mcp_call.completed",
        "response.mcp_call.failed",
    } <= types
    items = server.sessions[0].conversation.items
    assert [i.type for i in items if i.type.startswith("mcp")] == [
        "mcp_list_tools",
        *["mcp_call"] * 2,
    ]


async def test_a_call_waits_for_the_clients_approval() -> None:
    scenario = {**SCENARIO, "responses": [{"items": [{"mcp_call": "forecast"}]}] * 2}
    async with SimServer(scenario=scenario) as server, open_client(server) as client:
        await _declare(client, _mcp_tool("always"))
        await client.send("response.create")
        asked = (await client.until("response.done"))["response"]["output"]
        assert [i["type"] for i in asked] == ["mcp_approval_request"]
        await client.send(
            "conversation.item.create",
            item={"type": "mcp_approval_response", "approval_request_id": "nope", "approve": True},
        )
        assert (await client.until("error"))["error"]["param"] == "item.approval_request_id"
        approval = {"type": "mcp_approval_response", "approval_request_id": asked[0]["id"]}
        await client.send("conversation.item.create", item={**approval, "approve": True})
        await client.until("conversation.item.done")
        await client.send("response.create")
        ran = (await client.until("response.done"))["response"]["output"]
        assert ran[0]["type"] == "mcp_call" and ran[0]["approval_request_id"] == asked[0]["id"]
        _check(client.events)
    assert server.sessions[0].conversation.items[-1].output == '{"sky": "sun"}'


async def test_a_denied_call_is_not_run() -> None:
    scenario = {**SCENARIO, "responses": [{"items": [{"mcp_call": "forecast"}]}] * 2}
    async with SimServer(scenario=scenario) as server, open_client(server) as client:
        await _declare(client, _mcp_tool({"never": {"tool_names": ["other"]}}))
        await client.send("response.create")
        asked = (await client.until("response.done"))["response"]["output"]
        approval = {"type": "mcp_approval_response", "approval_request_id": asked[0]["id"]}
        await client.send("conversation.item.create", item={**approval, "approve": False})
        await client.until("conversation.item.done")
        await client.send("response.create")
        assert (await client.until("response.done"))["response"]["output"] == []
    assert any("denied approval" in note for note in server.sessions[0].notes)
