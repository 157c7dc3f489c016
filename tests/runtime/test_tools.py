"""Function tools: schema from hints + docstring, validation, errors as outputs, exactly-once."""

from __future__ import annotations

import asyncio
import json
from enum import Enum
from typing import Annotated, Literal

import pydantic
import pytest

from vocalis.providers.base import ToolCall
from vocalis.runtime.agent import Agent
from vocalis.runtime.tasks import TaskOwner
from vocalis.runtime.tool_executor import ToolExecutor, ToolRun
from vocalis.runtime.tools import FunctionTool, ToolError, function_tool, parse_docstring
from vocalis.utils.clock import ManualClock


class Unit(Enum):
    C = "celsius"
    F = "fahrenheit"


@function_tool
async def get_weather(city: str, unit: Unit = Unit.C, days: int = 1) -> dict[str, object]:
    """Look up the weather forecast.

    Use it whenever the caller asks about weather.

    Args:
        city: The city name,
            e.g. "Paris".
        unit: Temperature unit.
        days (int): How many days ahead.

    Returns:
        The forecast.
    """
    return {"city": city, "unit": unit.value, "days": days, "temp": 18}


def test_schema_from_hints_and_docstring() -> None:
    spec = get_weather.spec
    assert spec.name == "get_weather"
    assert (
        spec.description
        == "Look up the weather forecast.\n\nUse it whenever the caller asks about weather."
    )
    params = spec.parameters
    assert params["type"] == "object"
    assert params["required"] == ["city"]
    assert params["properties"]["city"] == {
        "type": "string",
        "description": 'The city name, e.g. "Paris".',
    }
    assert params["properties"]["days"]["type"] == "integer"
    assert params["properties"]["days"]["description"] == "How many days ahead."
    assert params["additionalProperties"] is False
    assert "title" not in json.dumps(params)


def test_docstring_parser_handles_missing_sections() -> None:
    assert parse_docstring(None) == ("", {})
    assert parse_docstring("Just a summary.") == ("Just a summary.", {})


def test_annotated_and_literal_parameters() -> None:
    def book(
        seats: Annotated[int, pydantic.Field(ge=1, le=8, description="party size")],
        time: Literal["18:00", "20:00"],
    ) -> str:
        return f"booked {seats} at {time}"

    tool = FunctionTool(book)
    props = tool.parameters["properties"]
    assert props["seats"]["minimum"] == 1 and props["seats"]["description"] == "party size"
    assert props["time"]["enum"] == ["18:00", "20:00"]


async def test_valid_call_returns_json_output() -> None:
    result = await get_weather.invoke('{"city": "Paris", "unit": "fahrenheit"}')
    assert not result.is_error
    assert json.loads(result.output) == {
        "city": "Paris",
        "unit": "fahrenheit",
        "days": 1,
        "temp": 18,
    }


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"unit": "celsius"}', "city: Field required"),
        ('{"city": "Paris", "days": "many"}', "days:"),
        ('{"city": "Paris", "extra": 1}', "extra:"),
    ],
)
async def test_bad_arguments_become_error_outputs(arguments: str, fragment: str) -> None:
    result = await get_weather.invoke(arguments)
    assert result.is_error
    assert fragment in json.loads(result.output)["error"]


async def test_raising_tool_and_tool_error() -> None:
    @function_tool
    def explode() -> str:
        raise RuntimeError("database down")

    @function_tool
    def refuse() -> str:
        raise ToolError("no tables left")

    broken = await explode.invoke("{}")
    assert broken.is_error and "RuntimeError: database down" in broken.output
    refused = await refuse.invoke("")
    assert refused.is_error and json.loads(refused.output) == {"error": "no tables left"}


async def test_timeout_and_unserializable_result() -> None:
    @function_tool(timeout=0.01)
    async def hang() -> str:
        await asyncio.Event().wait()
        return "never"

    @function_tool
    def weird() -> object:
        return object()

    timed_out = await hang.invoke("{}")
    assert timed_out.is_error and "timed out" in timed_out.output
    bad = await weird.invoke("{}")
    assert bad.is_error and "not JSON-serializable" in bad.output


async def test_sync_tool_runs_off_the_event_loop() -> None:
    import threading

    main = threading.get_ident()

    @function_tool
    def where() -> bool:
        return threading.get_ident() != main

    assert (await where.invoke("{}")).output == "true"


def test_agent_accepts_plain_functions_and_rejects_duplicates() -> None:
    def lookup(order_id: str) -> str:
        """Find an order."""
        return order_id

    agent = Agent("Be brief.", tools=[lookup, get_weather])
    assert [spec.name for spec in agent.tool_specs] == ["lookup", "get_weather"]
    with pytest.raises(ValueError, match="duplicate"):
        Agent("x", tools=[lookup, lookup])

    def variadic(*args: int) -> None:
        return None

    with pytest.raises(TypeError):
        FunctionTool(variadic)


async def test_executor_runs_each_call_id_exactly_once() -> None:
    calls: list[str] = []
    release = asyncio.Event()

    @function_tool
    async def reserve(table: int) -> str:
        calls.append(f"table {table}")
        await release.wait()
        return "reserved"

    owner = TaskOwner("test")
    started: list[ToolRun] = []
    finished: list[ToolRun] = []
    executor = ToolExecutor(
        owner, ManualClock(), on_started=started.append, on_finished=finished.append
    )
    executor.set_tools([reserve])
    call = ToolCall("item_1", "call_1", "reserve", '{"table": 4}', "resp_1")
    first = executor.submit(call)
    again = executor.submit(ToolCall("item_9", "call_1", "reserve", '{"table": 4}', "resp_2"))
    assert again is first
    assert executor.busy
    release.set()
    result = await first.future
    assert result.output == "reserved"
    assert calls == ["table 4"]
    assert [r.call_id for r in started] == ["call_1"]
    assert [r.call_id for r in finished] == ["call_1"]
    assert not executor.busy
    unknown = executor.submit(ToolCall("item_2", "call_2", "nope", "{}", "resp_1"))
    assert (await unknown.future).is_error
    await owner.aclose()


async def test_executor_close_cancels_running_tools_with_an_error_result() -> None:
    @function_tool
    async def slow() -> str:
        await asyncio.Event().wait()
        return "never"

    owner = TaskOwner("test")
    executor = ToolExecutor(owner, ManualClock())
    executor.set_tools([slow])
    run = executor.submit(ToolCall("i", "c", "slow", "{}", "r"))
    await asyncio.sleep(0)
    await owner.aclose()
    assert len(owner) == 0
    assert run.result is not None and run.result.is_error
