"""The agent `vocalis demo` runs: a weather assistant with one tool.

Kept inside the package (not only in examples/) so `vocalis demo` works from any directory;
`examples/assistant_with_tools.py` is the same idea, written for users to copy.
"""

from __future__ import annotations

from vocalis.runtime.agent import Agent
from vocalis.runtime.tools import ToolError, function_tool

_WEATHER = {
    "paris": {"sky": "sunny", "temperature_c": 22},
    "london": {"sky": "rainy", "temperature_c": 16},
}


@function_tool
def get_weather(city: str) -> dict[str, object]:
    """Current weather for a city.

    Args:
        city: The city name, e.g. "Paris".
    """
    report = _WEATHER.get(city.strip().lower())
    if report is None:
        raise ToolError(f"no weather data for {city}")
    return {"city": city, **report}


def make_agent() -> Agent:
    return Agent(
        instructions=(
            "You are a concise weather assistant. Before calling a tool, say a short preamble. "
            "Use get_weather for weather questions and answer in one or two sentences."
        ),
        tools=[get_weather],
        name="weather-assistant",
    )
