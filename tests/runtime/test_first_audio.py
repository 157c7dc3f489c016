"""The first-audio path: a message's first audio reaches the sink in the provider's step.

Added latency (#17) is the time from the provider's audio delta to the sink. Under a lockstep
burst of many sessions one event-loop turn costs milliseconds, so the first audio of every
message must be pushed inside the provider's own receive step, not after a task resumes:
the response's start reaches the session synchronously (`RealtimeSession.forward_events`),
its run begins the first message as the provider announces it, and each next message begins
as the previous one's audio ends. Observed by order alone: the sink holds the samples right
after the provider emitted them, with no `await` in between (no other task ran).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fake_provider import FakeMessage, FakeResponse, FakeSession, tone
from fake_provider import session_on as started_session

from vocalis.conversation.items import MessageItem
from vocalis.providers.base import Generation, MessageGeneration, RealtimeSession
from vocalis.runtime.session import AgentSession
from vocalis.transports.clocked import ClockedAudioSink, ClockedSegment
from vocalis.transports.memory import MemoryTransport
from vocalis.utils.clock import ManualClock, wait_idle


class RecordingSink(ClockedAudioSink):
    """A clocked sink that keeps every segment it began, to read what was pushed."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(clock, 24000, 20)
        self.begun: list[ClockedSegment] = []

    def begin_segment(self, segment_id: str, sample_rate: int) -> ClockedSegment:
        segment = super().begin_segment(segment_id, sample_rate)
        self.begun.append(segment)
        return segment

    def pushed(self) -> dict[str, float]:
        """ms pushed so far, by segment id."""
        return {segment.id: segment.pushed_ms for segment in self.begun}


@contextlib.asynccontextmanager
async def session_on(
    provider: FakeSession,
) -> AsyncIterator[tuple[AgentSession, ManualClock, RecordingSink]]:
    clock = ManualClock()
    transport = MemoryTransport(clock)
    sink = transport.sink = RecordingSink(clock)
    async with started_session(provider, transport, clock) as session:
        await wait_idle()  # the session listens to the provider
        yield session, clock, sink


def announce(generation: Generation, item_id: str, ms: float) -> MessageGeneration:
    """The provider announces an audio message and sends its first `ms` of audio."""
    message = MessageGeneration(
        item_id=item_id,
        response_id=generation.response_id,
        output_index=len(generation.announced_item_ids),
        modalities=("audio", "text"),
    )
    generation.announced_item_ids.append(item_id)
    generation.messages.send(message)
    message.audio.send(tone(ms))
    message.account.received_ms = ms
    return message


def complete(message: MessageGeneration, text: str) -> None:
    message.text.send(text)
    message.account.add_text(text)
    message.account.status = "completed"
    message.audio.close()
    message.text.close()


async def play_until_idle(session: AgentSession, clock: ManualClock) -> None:
    for _ in range(500):
        if session.snapshot().idle:
            return
        await clock.advance(0.02)
    raise AssertionError("the session did not become idle")


async def test_the_first_audio_is_pushed_in_the_step_that_starts_the_response() -> None:
    """`response.created`, the message and its first delta in one provider step: the run and
    its segment exist, and the audio is in the sink, before any task ran."""
    provider = FakeSession()
    async with session_on(provider) as (session, clock, sink):
        provider.start_response(FakeResponse([FakeMessage("Hello there.", 400)]))
        assert sink.pushed() == {"item_2": 400.0}
        await play_until_idle(session, clock)
        assert [i.text for i in session.history if isinstance(i, MessageItem)] == ["Hello there."]


async def test_a_message_announced_before_the_run_task_ran_is_pushed_at_once() -> None:
    """The response starts in one provider step and its message in the next one, before the
    response's task had a turn: the message still begins in the step that announces it."""
    provider = FakeSession()
    async with session_on(provider) as (session, clock, sink):
        generation = provider.start_response(FakeResponse([], finish=False))
        message = announce(generation, "item_a", 300)
        assert sink.pushed() == {"item_a": 300.0}
        complete(message, "One moment.")
        provider.finish(generation, "completed")
        await play_until_idle(session, clock)
        assert [i.text for i in session.history if isinstance(i, MessageItem)] == ["One moment."]


async def test_the_next_message_is_pushed_in_the_step_that_ends_the_previous_audio() -> None:
    """The first message's audio ends and the second one is announced with its first delta
    in the same provider step (one socket read): its segment has that audio before the
    response's task resumes from the first message."""
    provider = FakeSession()
    async with session_on(provider) as (session, clock, sink):
        generation = provider.start_response(FakeResponse([], finish=False))
        first = announce(generation, "item_a", 200)
        await wait_idle()  # every task ran: the run waits for the first message's audio
        complete(first, "Sure.")
        second = announce(generation, "item_b", 300)
        assert sink.pushed() == {"item_a": 200.0, "item_b": 300.0}
        await wait_idle()
        complete(second, "It shipped on Monday.")
        third = announce(generation, "item_c", 100)  # the run waited for it this time
        assert sink.pushed()["item_c"] == 100.0
        complete(third, "Anything else?")
        provider.finish(generation, "completed")
        await play_until_idle(session, clock)
        heard = [i.text for i in session.history if isinstance(i, MessageItem)]
        assert heard == ["Sure.", "It shipped on Monday.", "Anything else?"]


async def test_messages_begin_back_to_back_while_the_response_task_is_behind() -> None:
    """In one provider step: the first audio ends, a short second message comes whole, and a
    third one starts. Each begins as the previous audio ends, however far behind the
    response's task is (it still waits on the first message)."""
    provider = FakeSession()
    async with session_on(provider) as (session, clock, sink):
        generation = provider.start_response(FakeResponse([], finish=False))
        first = announce(generation, "item_a", 200)
        await wait_idle()
        complete(first, "One.")
        complete(announce(generation, "item_b", 100), "Two.")
        third = announce(generation, "item_c", 300)
        assert sink.pushed() == {"item_a": 200.0, "item_b": 100.0, "item_c": 300.0}
        complete(third, "Three.")
        provider.finish(generation, "completed")
        await play_until_idle(session, clock)
        heard = [i.text for i in session.history if isinstance(i, MessageItem)]
        assert heard == ["One.", "Two.", "Three."]


class QueuedFakeSession(FakeSession):
    """A provider without its own `forward_events`: the default, from `events()`."""

    forward_events = RealtimeSession.forward_events


async def test_a_provider_that_only_iterates_its_events_still_plays_and_settles() -> None:
    """The default delivery is a loop turn later: the audio is pushed once the session's
    task ran, the reply is heard, and the provider's close ends the session."""
    provider = QueuedFakeSession()
    async with session_on(provider) as (session, clock, sink):
        provider.start_response(FakeResponse([FakeMessage("Hello there.", 400)]))
        assert sink.pushed() == {}
        await wait_idle()
        assert sink.pushed() == {"item_2": 400.0}
        await play_until_idle(session, clock)
        assert [i.text for i in session.history if isinstance(i, MessageItem)] == ["Hello there."]
        await provider.aclose()
        await session.wait_closed()
        assert session.end is not None and not session.end.failed
