"""Hand-off and hang-up, tested offline: `examples/multi_agent/triage.py` in virtual time."""

from __future__ import annotations

from multi_agent.triage import agent, billing

from vocalis.testing import AgentTest

HANDOFF = {
    "responses": [
        # Triage hands off; the answer to the tool's result comes from billing...
        {"items": [{"call": "transfer_to_billing", "arguments": {}}]},
        {"say": "Billing here. Which order should I refund?"},
        # ...which has its own tools, and ends the call after the goodbye.
        {"items": [{"call": "refund", "arguments": {"order": "42"}}]},
        {"say": "Order 42 is refunded."},
        {"items": [{"say": "Goodbye!"}, {"call": "end_call", "arguments": {}}]},
        {"say": "Take care."},
    ]
}


async def test_triage_hands_off_to_billing_which_ends_the_call() -> None:
    async with AgentTest(agent, scenario=HANDOFF) as call:
        turn = await call.user_says("I was charged twice for my order.")
        turn.expect_tool_call("transfer_to_billing")
        turn.expect_said("Billing here")
        assert call.session.agent is billing
        # The model was given billing's instructions and tools at the hand-off.
        updates = [e for e in call.sim.client_events if e["type"] == "session.update"]
        assert [t["name"] for t in updates[-1]["session"]["tools"]] == ["refund", "end_call"]

        turn = await call.user_says("Order 42, please.")
        assert turn.expect_tool_call("refund", order="42").result == {
            "order": "42",
            "refunded": True,
        }
        turn = await call.user_says("That's all, thanks.")
        turn.expect_tool_call("end_call")
        turn.expect_heard("Take care.")  # the goodbye played in full...
        await call.transport.wait_closed()  # ...then the call ended
