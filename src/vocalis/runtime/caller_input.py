"""The caller's input: audio frames to the provider (and the local VAD), typed messages.

Audio is the hot path: one append per frame to the provider and the input timeline (which
maps stream positions back to clock time for latency), no logging, no per-frame tasks. A
typed message becomes a user item created on the provider, cuts the agent (like speech would)
and asks for a reply.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from vocalis.audio.frame import AudioFrame
from vocalis.audio.vad import EnergyVAD
from vocalis.conversation.history import History
from vocalis.conversation.items import MessageItem
from vocalis.providers.base import OperationError, RealtimeSession
from vocalis.runtime.events import ConversationItemAdded, ErrorEvent, SessionEvent
from vocalis.runtime.tasks import TaskOwner
from vocalis.runtime.turn_driver import TurnDriver
from vocalis.transports.base import AudioSource
from vocalis.utils.channel import Channel, ChannelIterator
from vocalis.utils.clock import Clock

# The names failures are reported under (as the tasks that used to run these were named).
AUDIO_TASK = "caller-audio"
TEXT_TASK = "caller-text"


def follow_caller_audio(
    source: AudioSource,
    provider: RealtimeSession,
    turns: TurnDriver,
    clock: Clock,
    vad: EnergyVAD | None,
    owner: TaskOwner,
) -> None:
    """Forward every caller frame; with local turns, feed the VAD's events to turn-taking.

    A source fed by a callback calls `on_frame` inside its own push, so a caller frame
    reaches the provider without an event-loop task hop. Such a source `forward`s: no task
    waits for the hang-up (#17); the forwarding begins one loop turn from now, where a task
    started now would have begun `deliver`, and ends when `owner` closes. Any other source
    is read by `deliver` in a task. A failure is reported as the task's was.
    """
    rate = provider.capabilities.input_sample_rate
    ms_per_sample = 1000.0 / rate
    timeline = turns.timeline
    append_audio = provider.append_audio
    now = clock.now
    stop: Callable[[], None] | None = None

    def on_frame(frame: AudioFrame) -> None:
        if owner.closed and stop is not None:  # the session is over: as a cancelled task
            stop()
            return
        samples = frame.samples
        append_audio(samples)
        timeline.append(len(samples) * ms_per_sample, now())
        if vad is not None:
            for event in vad.process(samples):
                turns.local_vad(event)

    def on_end(error: BaseException | None) -> None:
        if error is not None and not owner.closed:
            owner.report(AUDIO_TASK, error)

    def begin() -> None:
        nonlocal stop
        if not owner.closed:
            stop = source.forward(rate, on_frame, on_end)
            if stop is None:
                owner.spawn(source.deliver(rate, on_frame), AUDIO_TASK)

    asyncio.get_running_loop().call_soon(begin)


class TypedMessages:
    """Each typed message, in order: a user item on the provider, the agent cut, a reply.

    A transport's text input is usually a `Channel` that stays empty for the whole call (a
    voice caller rarely types). A task waiting on it cost every session ~1.5 KB and one of
    its five idle tasks (#17), so `follow` forwards such a channel to `arrived` and a task
    exists only while typed messages wait to be handled. Any other `AsyncIterator` is still
    read by a task. Either way the messages are handled one at a time in the order typed,
    and a failure ends the text input (it is reported; later messages are not read).
    """

    def __init__(
        self,
        provider: RealtimeSession,
        turns: TurnDriver,
        history: History,
        clock: Clock,
        emit: Callable[[SessionEvent], None],
        reply: Callable[[], object],
    ) -> None:
        self._provider, self._turns, self._history = provider, turns, history
        self._clock, self._emit, self._reply = clock, emit, reply
        self._count = 0
        self._owner: TaskOwner | None = None
        self._channel: Channel[str] | None = None
        self._waiting: list[str] = []  # typed messages are few: a list, not a 760 B deque
        self._draining = False

    def follow(self, text_in: AsyncIterator[str], owner: TaskOwner) -> None:
        """Handle what `text_in` delivers until it ends or `owner` closes."""
        if not isinstance(text_in, ChannelIterator):
            owner.spawn(self._pump(text_in), TEXT_TASK)
            return
        self._owner, self._channel = owner, text_in.channel
        self._channel.forward_to(self.arrived)
        self._channel.on_close(self._closed)

    def _closed(self) -> None:
        """The text input ended; one closed with an error is reported, as a reader's was."""
        channel, owner = self._channel, self._owner
        if channel is not None and channel.error is not None and owner is not None:
            owner.report(TEXT_TASK, channel.error)

    def arrived(self, text: str) -> None:
        """A typed message from the forwarded channel (inside the transport's callback)."""
        owner = self._owner
        if owner is None or owner.closed:  # the session is closing: nobody handles it
            return
        self._waiting.append(text)
        if not self._draining:
            self._draining = True
            owner.spawn(self._drain(), TEXT_TASK)

    async def _drain(self) -> None:
        try:
            while self._waiting:
                await self.handle(self._waiting.pop(0))
        except BaseException:
            if self._channel is not None:  # as the reading task did: stop reading for good
                self._channel.stop_forwarding()
            self._owner = None
            raise
        finally:
            self._draining = False

    async def _pump(self, text_in: AsyncIterator[str]) -> None:
        async for text in text_in:
            await self.handle(text)

    async def handle(self, text: str) -> None:
        self._count += 1
        item = MessageItem(
            id=f"vc_typed_{self._count}", role="user", text=text, created_at=self._clock.now()
        )
        key = self._history.next_key()
        try:
            item.id = await self._provider.create_item(item)
        except OperationError as exc:
            self._emit(ErrorEvent(f"typed message rejected: {exc.message}"))
            return
        self._history.add(item, key)
        self._emit(ConversationItemAdded(item))
        self._turns.interrupt("text", True)
        self._reply()
