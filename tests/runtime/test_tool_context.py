"""Tools with a `ToolContext`: hidden from the model, given the call, able to act on it
(say, transfer where supported, hand off with `on_enter`); and what transports say about
their calls (`CallInfo`)."""

from __future__ import annotations

import json

import pytest

from vocalis import Agent, AgentSession, CallInfo, ToolContext, function_tool
from vocalis.testing import AgentTest
from vocalis.transports.playground import PlaygroundTransport
from vocalis.transports.twilio.protocol import Start
from vocalis.transports.twilio.transport import TwilioTransport
from vocalis.utils.clock import MonotonicClock


@function_tool
async def whoami(ctx: ToolContext, greeting: str) -> dict[str, object]:
    """Who is calling.

    Args:
        greeting: How to greet.
    """
    return {"greeting": greeting, "transport": ctx.call.transport, "tool": ctx.tool_name}


def test_the_context_parameter_is_not_shown_to_the_model() -> None:
    assert whoami.context_param == "ctx"
    assert list(whoami.parameters["properties"]) == ["greeting"]
    assert whoami.parameters["required"] == ["greeting"]


def test_a_sync_tool_cannot_take_the_context() -> None:
    def sync_tool(ctx: ToolContext) -> str:
        return ""

    with pytest.raises(TypeError, match="must be `async def`"):
        function_tool(sync_tool)


async def test_outside_a_session_the_tool_gets_an_error_output() -> None:
    result = await whoami.invoke('{"greeting": "hi"}')
    assert result.is_error and "needs the call's context" in result.output


async def test_in_a_session_the_tool_sees_its_call() -> None:
    scenario = {"responses": [{"items": [{"call": "whoami", "arguments": {"greeting": "hi"}}]}]}
    async with AgentTest(Agent("x", tools=[whoami]), scenario=scenario) as call:
        turn = await call.user_says("Who am I?")
        record = turn.expect_tool_call("whoami", greeting="hi")
        assert record.result == {"greeting": "hi", "transport": "memory", "tool": "whoami"}


@function_tool
async def forward(ctx: ToolContext, number: str) -> str:
    """Forward the call.

    Args:
        number: Where to.
    """
    await ctx.transfer(number)
    return "forwarded"


@function_tool
async def hold_on(ctx: ToolContext) -> str:
    """Tell the caller to hold on."""
    ctx.say("Please hold on.")
    return "told"


async def test_transfer_is_refused_where_the_transport_cannot_and_say_speaks() -> None:
    scenario = {
        "responses": [
            {"items": [{"call": "forward", "arguments": {"number": "+15550100"}}]},
            {"say": "I cannot forward this call."},
            {"items": [{"call": "hold_on", "arguments": {}}]},
            {"say": "Done."},
        ]
    }
    async with AgentTest(Agent("x", tools=[forward, hold_on]), scenario=scenario) as call:
        turn = await call.user_says("Forward me.")
        refused = turn.expect_tool_call("forward", number="+15550100")
        assert refused.is_error
        assert refused.result == {"error": "this call (memory) cannot be transferred"}
        await call.user_says("Hold on?")
        # The sim says a `say()` verbatim.
        call.transcript.expect_heard("Please hold on.")


async def test_handoff_runs_on_enter_of_the_new_agent() -> None:
    entered: list[str] = []

    async def on_enter(session: AgentSession) -> None:
        assert session.agent is specialist  # active before on_enter runs
        entered.append("specialist")

    specialist = Agent("You are the specialist.", name="specialist", on_enter=on_enter)

    @function_tool
    async def escalate(ctx: ToolContext) -> str:
        """Escalate."""
        await ctx.handoff(specialist)
        return "escalated"

    scenario = {
        "responses": [
            {"items": [{"call": "escalate", "arguments": {}}]},
            {"say": "Specialist speaking."},
        ]
    }
    async with AgentTest(Agent("front desk", tools=[escalate]), scenario=scenario) as call:
        turn = await call.user_says("I need an expert.")
        turn.expect_said("Specialist speaking.")
        assert entered == ["specialist"] and call.session.agent is specialist
        update = [e for e in call.sim.client_events if e["type"] == "session.update"][-1]
        assert update["session"]["instructions"] == "You are the specialist."


def test_transports_describe_their_calls() -> None:
    start = Start(
        stream_sid="MZ1",
        call_sid="CA1",
        account_sid="AC1",
        tracks=("inbound",),
        custom_parameters={"caller": "+15550123", "tier": "vip"},
    )
    twilio = TwilioTransport(start, MonotonicClock()).call_info
    assert twilio == CallInfo(
        transport="twilio",
        caller="+15550123",
        parameters={"caller": "+15550123", "tier": "vip"},
        call_id="CA1",
    )


async def test_the_playground_call_info_comes_from_the_pages_metadata() -> None:
    page = PlaygroundTransport(MonotonicClock())
    page.handle_text(json.dumps({"type": "ready", "metadata": {"tier": "vip"}}))
    assert page.call_info == CallInfo(transport="playground", parameters={"tier": "vip"})
