"""Typed caller messages: handled one at a time in order, with no task while none wait (#17).

A transport's text input is a `Channel` that stays empty in most calls; the session used to
keep a task reading it for the whole call. These tests observe the tasks through
`asyncio.all_tasks()` (the session names them) and the messages through the provider's ops.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fake_provider import FakeSession, session_on

from vocalis.conversation.items import ConversationItem, MessageItem
from vocalis.runtime.events import ErrorEvent
from vocalis.runtime.session import AgentSession
from vocalis.transports.memory import MemoryTransport
from vocalis.utils.channel import Channel
from vocalis.utils.clock import ManualClock, wait_idle


def text_tasks() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t.get_name().endswith("caller-text")]


class GatedCreates(FakeSession):
    """Each create waits for `gate`; `most` is the largest number in flight at once."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.in_flight = 0
        self.most = 0

    async def create_item(self, item: ConversationItem, previous_item_id: str | None = None) -> str:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        await self.gate.wait()
        self.in_flight -= 1
        return await super().create_item(item, previous_item_id)


class FirstCreateBreaks(FakeSession):
    async def create_item(self, item: ConversationItem, previous_item_id: str | None = None) -> str:
        if not self.ops:
            self.ops.append(("broken", item))
            raise RuntimeError("provider bug")
        return await super().create_item(item, previous_item_id)


class OwnTextInput(MemoryTransport):
    """A transport whose typed messages come from `typed`: a channel, or any iterator."""

    def __init__(self, clock: ManualClock, typed: AsyncIterator[str]) -> None:
        super().__init__(clock)
        self.typed = typed

    def text_in(self) -> AsyncIterator[str]:
        return self.typed


def created(provider: FakeSession) -> list[str]:
    return [args.text for kind, args in provider.ops if kind == "create"]


def user_texts(session: AgentSession) -> list[str]:
    return [i.text for i in session.history if isinstance(i, MessageItem) and i.role == "user"]


async def test_no_task_waits_for_typed_text_until_the_caller_types() -> None:
    provider, transport = FakeSession(), MemoryTransport(ManualClock())
    async with session_on(provider, transport) as session:
        await wait_idle()
        assert text_tasks() == []
        transport.send_text("hello")
        assert len(text_tasks()) == 1  # started by the message itself
        await wait_idle()
        assert created(provider) == ["hello"]
        assert user_texts(session) == ["hello"]
        assert text_tasks() == []  # gone once nothing waits


async def test_messages_typed_together_are_handled_one_at_a_time_in_order() -> None:
    provider, transport = GatedCreates(), MemoryTransport(ManualClock())
    async with session_on(provider, transport) as session:
        for text in ("one", "two", "three"):
            transport.send_text(text)
        await wait_idle()
        assert provider.in_flight == 1
        provider.gate.set()
        await wait_idle()
        assert provider.most == 1
        assert created(provider) == ["one", "two", "three"]
        assert user_texts(session) == ["one", "two", "three"]
        transport.send_text("four")  # a later message starts handling again
        await wait_idle()
        assert created(provider)[-1] == "four"


async def test_a_failure_ends_the_text_input_and_is_reported() -> None:
    provider, transport = FirstCreateBreaks(), MemoryTransport(ManualClock())
    async with session_on(provider, transport) as session:
        errors: list[ErrorEvent] = []
        session.on(ErrorEvent, errors.append)
        transport.send_text("first")
        await wait_idle()
        transport.send_text("second")
        await wait_idle()
        assert created(provider) == []  # as the reading task did: no more messages read
        assert [e.message for e in errors] == [
            "session:caller-text failed: RuntimeError: provider bug"
        ]


async def test_a_text_input_closed_with_an_error_is_reported() -> None:
    typed: Channel[str] = Channel()
    transport = OwnTextInput(ManualClock(), aiter(typed))
    async with session_on(FakeSession(), transport) as session:
        errors: list[ErrorEvent] = []
        session.on(ErrorEvent, errors.append)
        typed.close(ValueError("line dropped"))
        await wait_idle()
        assert [e.message for e in errors] == [
            "session:caller-text failed: ValueError: line dropped"
        ]


async def test_any_other_iterator_is_still_read_by_a_task() -> None:
    async def lines() -> AsyncIterator[str]:
        for text in ("from", "a generator"):
            yield text

    provider = FakeSession()
    transport = OwnTextInput(ManualClock(), lines())
    async with session_on(provider, transport) as session:
        await wait_idle()
        assert created(provider) == ["from", "a generator"]
        assert user_texts(session) == ["from", "a generator"]
        assert text_tasks() == []  # the iterator ended
