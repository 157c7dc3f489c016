"""The re-sync at a response's end costs no task when the provider holds the heard history.

The runtime re-syncs the provider conversation each time no response is left in flight (a
checkpoint). Almost always the plan is empty: the OpenAI session decides that synchronously
(`sync_history_nowait`) and the turn driver starts no `resync-history` task (#17: one task
less per response, at a boundary many sessions reach together). The provider gets no
history operation and the history stays what the caller heard.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Generator, Iterator
from contextlib import contextmanager
from typing import Any

from conformance_support import harness

TEXT = "Your order has shipped and should arrive on Thursday afternoon."


@contextmanager
def task_names() -> Iterator[list[str]]:
    """The name of every task the loop creates meanwhile (read once the block ended)."""
    loop = asyncio.get_running_loop()
    tasks: list[asyncio.Task[Any]] = []

    def factory(
        loop: asyncio.AbstractEventLoop,
        coro: Coroutine[Any, Any, Any] | Generator[Any, None, Any],
        /,
        **kwargs: Any,
    ) -> asyncio.Future[Any]:
        task = asyncio.Task(coro, loop=loop, **kwargs)
        tasks.append(task)
        return task

    loop.set_task_factory(factory)
    names: list[str] = []
    try:
        yield names
    finally:
        loop.set_task_factory(None)
        names.extend(task.get_name() for task in tasks)


async def test_a_settled_response_resyncs_without_a_task() -> None:
    scenario = {"responses": [{"say": TEXT}, {"say": "You are welcome."}]}
    async with harness(scenario) as h:
        with task_names() as names:
            h.say("Where is my order?")
            first = await h.response(0)
            await h.play_until(lambda: first.settled and h.session.snapshot().idle)
            h.say("Thanks.")
            second = await h.response(1)
            await h.play_until(lambda: second.settled and h.session.snapshot().idle)
        assert [n for n in names if "resync" in n] == []
        assert h.client_events("conversation.item.create") == []
        assert h.client_events("conversation.item.delete") == []
        assert [m.text for m in h.assistant_messages()] == [TEXT, "You are welcome."]
