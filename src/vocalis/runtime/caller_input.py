"""The caller's input: audio frames to the provider (and the local VAD), typed messages.

Audio is the hot path: one append per frame to the provider and the input timeline (which
maps stream positions back to clock time for latency), no logging, no per-frame tasks. A
typed message becomes a user item created on the provider, cuts the agent (like speech would)
and asks for a reply.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from vocalis.audio.frame import AudioFrame
from vocalis.audio.vad import EnergyVAD
from vocalis.conversation.history import History
from vocalis.conversation.items import MessageItem
from vocalis.providers.base import OperationError, RealtimeSession
from vocalis.runtime.events import ConversationItemAdded, ErrorEvent, SessionEvent
from vocalis.runtime.turn_driver import TurnDriver
from vocalis.transports.base import AudioSource
from vocalis.utils.clock import Clock


async def pump_caller_audio(
    source: AudioSource,
    provider: RealtimeSession,
    turns: TurnDriver,
    clock: Clock,
    vad: EnergyVAD | None,
) -> None:
    """Forward every caller frame; with local turns, feed the VAD's events to turn-taking.

    Through `AudioSource.deliver`: a source fed by a callback calls `on_frame` inside its
    own push, so a caller frame reaches the provider without an event-loop task hop.
    """
    rate = provider.capabilities.input_sample_rate
    ms_per_sample = 1000.0 / rate
    timeline = turns.timeline
    append_audio = provider.append_audio
    now = clock.now

    def on_frame(frame: AudioFrame) -> None:
        samples = frame.samples
        append_audio(samples)
        timeline.append(len(samples) * ms_per_sample, now())
        if vad is not None:
            for event in vad.process(samples):
                turns.local_vad(event)

    await source.deliver(rate, on_frame)


async def pump_caller_text(
    text_in: AsyncIterator[str],
    provider: RealtimeSession,
    turns: TurnDriver,
    history: History,
    clock: Clock,
    emit: Callable[[SessionEvent], None],
    reply: Callable[[], object],
) -> None:
    """Each typed message: a user item on the provider, the agent cut, a reply requested."""
    count = 0
    async for text in text_in:
        count += 1
        item = MessageItem(id=f"vc_typed_{count}", role="user", text=text, created_at=clock.now())
        key = history.next_key()
        try:
            item.id = await provider.create_item(item)
        except OperationError as exc:
            emit(ErrorEvent(f"typed message rejected: {exc.message}"))
            continue
        history.add(item, key)
        emit(ConversationItemAdded(item))
        turns.interrupt("text", True)
        reply()
