"""A voice assistant with two tools.

Tools are plain functions: the type hints and the docstring become the JSON schema the model
sees, and the arguments it sends are validated before your code runs. A tool that raises, or
gets bad arguments, sends the model an error output instead of crashing the call.

Run it offline (embedded sim-server, no key) on a recorded question:

    uv run python examples/make_caller_wav.py "What is the weather in Paris?" out/caller.wav
    uv run vocalis run examples/assistant_with_tools.py:agent --input out/caller.wav \\
        --scenario examples/scenarios/preamble_tool_answer.yaml --history out/history.json

With OPENAI_API_KEY set, the same command talks to OpenAI instead.

The file is also runnable on its own (`run_app` at the bottom): `python
examples/assistant_with_tools.py` chats in the terminal; add `console`, `serve --playground`
or `run --input caller.wav` for the other commands.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from vocalis import Agent, ToolError, function_tool, run_app

# A tiny offline "weather service" so the example is deterministic.
_WEATHER = {
    "paris": {"sky": "sunny", "temperature_c": 22},
    "london": {"sky": "light rain", "temperature_c": 16},
    "tokyo": {"sky": "cloudy", "temperature_c": 19},
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


@function_tool
def get_time(timezone: str = "Europe/Paris") -> str:
    """The current local time in an IANA timezone.

    Args:
        timezone: IANA timezone name such as "Europe/Paris" or "America/New_York".
    """
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ToolError(f"unknown timezone {timezone!r}") from None
    return datetime.now(zone).strftime("%H:%M")


agent = Agent(
    instructions=(
        "You are a concise voice assistant. Use get_weather for weather questions and "
        "get_time for the time. Answer in one or two short sentences."
    ),
    tools=[get_weather, get_time],
)


if __name__ == "__main__":
    run_app(agent)
