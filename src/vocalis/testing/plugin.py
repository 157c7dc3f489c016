"""The pytest plugin (registered on install): an `agent_test` fixture.

    async def test_greets(agent_test) -> None:
        call = await agent_test(agent, scenario={"responses": [{"say": "Hello!"}]})
        (await call.user_says("Hi")).expect_said("Hello")

Why a fixture: a test should not need to remember to close the sim, the session and the
transport — the fixture opens as many calls as the test asks for and closes them all at
teardown, even when an assertion failed. It needs pytest-asyncio (async tests and fixtures);
without it the fixture is not defined and `AgentTest` still works under `async with`.
Importing this module stays cheap: the runtime loads when a test first uses the fixture.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vocalis.runtime.agent import Agent
    from vocalis.testing.call import AgentTest, ScenarioLike, StartCall

try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - the fixture needs it; AgentTest does not
    _HAVE_ASYNCIO = False
else:
    _HAVE_ASYNCIO = True

if _HAVE_ASYNCIO:

    @pytest_asyncio.fixture
    async def agent_test() -> AsyncIterator[StartCall]:
        """`await agent_test(agent, scenario, **options)` opens an `AgentTest` call."""
        from vocalis.testing.call import AgentTest

        opened: list[AgentTest] = []

        async def start(agent: Agent, scenario: ScenarioLike = None, **kwargs: Any) -> AgentTest:
            call = AgentTest(agent, scenario, **kwargs)
            await call.__aenter__()
            opened.append(call)
            return call

        try:
            yield start
        finally:
            for call in reversed(opened):
                await call.aclose()
