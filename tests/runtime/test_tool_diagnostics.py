"""What a developer sees when a tool goes wrong: tracebacks in the log, the model still gets a
one-line error output, and a tool whose parameter type cannot be described fails at definition
naming the parameter (not a pydantic dump naming an internal module)."""

from __future__ import annotations

import json
import logging
import socket

import pytest

from vocalis import function_tool
from vocalis.runtime.tools import ToolError


def _lookup(city: str) -> dict[str, str]:
    raise KeyError(city)


async def test_an_exception_is_logged_with_its_traceback_and_returned_as_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    @function_tool
    def get_weather(city: str) -> dict[str, str]:
        """Weather."""
        return _lookup(city)

    with caplog.at_level(logging.INFO, logger="vocalis.runtime.tools"):
        result = await get_weather.invoke('{"city": "Paris"}')
    assert result.is_error
    assert json.loads(result.output) == {"error": "get_weather failed: KeyError: 'Paris'"}
    [record] = caplog.records
    assert record.levelno == logging.ERROR and "get_weather failed" in record.getMessage()
    assert record.exc_info is not None
    assert "_lookup" in caplog.text  # the traceback reaches the log, down to the raising frame


async def test_tool_errors_and_bad_arguments_are_logged_without_tracebacks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    @function_tool
    def book(party_size: int) -> str:
        """Book."""
        raise ToolError("we are full tonight")

    with caplog.at_level(logging.INFO, logger="vocalis.runtime.tools"):
        refused = await book.invoke('{"party_size": 2}')
        invalid = await book.invoke('{"party_size": "many"}')
        broken = await book.invoke("{not json")
    assert json.loads(refused.output) == {"error": "we are full tonight"}
    assert invalid.is_error and broken.is_error
    levels = [(r.levelname, r.exc_info is None) for r in caplog.records]
    assert levels == [("INFO", True), ("WARNING", True), ("WARNING", True)]
    assert "party_size" in caplog.records[1].getMessage()


def test_an_unsupported_parameter_type_names_the_parameter() -> None:
    def send(conn: socket.socket, text: str) -> None:
        """Send."""

    with pytest.raises(TypeError) as info:
        function_tool(send)
    message = str(info.value)
    assert message.startswith("tool send: parameter 'conn' has type socket")
    assert "pydantic_core" not in message and "validation error" not in message
