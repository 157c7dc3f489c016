"""Two agents and a tool that ends the call: a triage agent hands billing questions to a
specialist with its own instructions and tools; either can end the call after a goodbye.

Tools that declare a `ToolContext` parameter get the call (never shown to the model):
`ctx.handoff(agent)`, `ctx.hang_up()`, `ctx.say(...)`, `ctx.transfer(number)` where the
transport supports it, and `ctx.call` (caller id, Twilio custom parameters, page metadata).

    uv run vocalis chat examples/multi_agent/triage.py \\
        --scenario examples/scenarios/triage_handoff.yaml
    uv run pytest examples/testing -q -k hands_off      # the same call as a test
"""

from __future__ import annotations

from vocalis import Agent, CallInfo, ToolContext, ToolError, function_tool

_REFUNDED: set[str] = set()


@function_tool
async def end_call(ctx: ToolContext) -> str:
    """End the call. Use it after saying goodbye, when the caller has nothing else."""
    ctx.hang_up()  # once the agent's goodbye has played
    return "the call ends after your goodbye"


@function_tool
def refund(order: str) -> dict[str, object]:
    """Refund an order.

    Args:
        order: The order number, digits only.
    """
    if not order.isdigit():
        raise ToolError(f"{order!r} is not an order number")
    if order in _REFUNDED:
        return {"order": order, "refunded": False, "reason": "already refunded"}
    _REFUNDED.add(order)
    return {"order": order, "refunded": True}


billing = Agent(
    instructions="You are the billing specialist. Refund orders with refund(order). Be brief.",
    tools=[refund, end_call],
    name="billing",
)


@function_tool
async def transfer_to_billing(ctx: ToolContext) -> str:
    """Hand the caller to billing (refunds, invoices, charges)."""
    # From here on billing's instructions and tools apply; its first words are the answer
    # to this tool's result.
    await ctx.handoff(billing)
    return "transferred to billing: introduce yourself as billing"


agent = Agent(
    instructions=(
        "You are the front desk. For anything about payments, refunds or invoices call "
        "transfer_to_billing. Otherwise answer briefly; use end_call when the caller is done."
    ),
    tools=[transfer_to_billing, end_call],
    name="triage",
)


def make_agent(call: CallInfo) -> Agent:
    """A per-call factory (`AGENT_REF` = examples/multi_agent/triage.py:make_agent): VIP
    callers (a Twilio custom parameter or the page's ?meta.tier=vip) go straight to billing."""
    return billing if call.parameters.get("tier") == "vip" else agent
