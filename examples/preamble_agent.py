"""A preamble-heavy agent for gpt-realtime-2.

gpt-realtime-2 often answers with several assistant messages in one response: a short
preamble ("Let me look that up…"), a tool call, and later the answer. vocalis plays each
message as its own output segment and records, per message, what the caller actually heard —
so if the caller interrupts after the preamble, the history holds the preamble only and the
provider's copy is truncated to match.

Offline, on the embedded sim-server with a scripted preamble + tool + answer:

    uv run python examples/make_caller_wav.py "Where is my order 4217?" out/caller.wav
    uv run vocalis run examples/preamble_agent.py:agent --input out/caller.wav \\
        --scenario examples/scenarios/preamble_tool_answer.yaml --model gpt-realtime-2

Against OpenAI: set OPENAI_API_KEY and pass --model gpt-realtime-2.
"""

from __future__ import annotations

import asyncio

from vocalis import Agent, function_tool

_ORDERS = {"4217": ("shipped", "Thursday"), "9981": ("being packed", "next Monday")}


@function_tool
async def lookup_order(order_id: str) -> dict[str, str]:
    """Look up the status of an order.

    Args:
        order_id: The order number the caller gave, digits only.
    """
    await asyncio.sleep(0.3)  # a slow backend: the preamble covers the wait
    status, arrives = _ORDERS.get(order_id.strip(), ("unknown", "unknown"))
    return {"order_id": order_id, "status": status, "arrives": arrives}


@function_tool
def get_weather(city: str) -> dict[str, object]:
    """Current weather for a city.

    Args:
        city: The city name.
    """
    return {"city": city, "sky": "sunny", "temperature_c": 22}


agent = Agent(
    instructions=(
        "You are a support agent on the phone. Before every tool call, say one short "
        "preamble sentence so the caller knows you are working on it (for example 'Let me "
        "check that for you.'). After the tool returns, answer in one or two sentences. "
        "If the caller interrupts, stop and address what they said."
    ),
    tools=[lookup_order, get_weather],
)
