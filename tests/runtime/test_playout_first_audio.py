"""The first-audio path: a message's audio reaches its segment in the step that announces it.

A run waits for its next message when the previous message's audio ended before the provider
announced the next one (the second message of a response), or when the run started before
the provider announced any. The message — and the audio queued on it, often from the same
socket read — must then reach the sink inside that announcement, not an event-loop turn later
when the playout's task would resume.
"""

from __future__ import annotations

import asyncio

import numpy as np

from vocalis.providers.base import Generation, MessageGeneration
from vocalis.runtime.playout import ResponsePlayout
from vocalis.runtime.tasks import TaskOwner
from vocalis.transports.memory import MemoryTransport
from vocalis.utils.clock import ManualClock, settle


async def test_a_message_announced_while_the_run_waits_is_begun_in_that_send() -> None:
    owner = TaskOwner("session")
    generation = Generation(response_id="resp_1")
    clock = ManualClock()
    transport = MemoryTransport(clock)
    playout = ResponsePlayout(
        generation,
        sink=transport.audio_out,
        text_sink=transport.text_out,
        clock=clock,
        owner=owner,
        sample_rate=24000,
    )
    run = asyncio.create_task(playout.run())
    await settle()  # the run waits for a message
    assert playout.pulled == []
    message = MessageGeneration(
        item_id="item_1", response_id="resp_1", output_index=0, modalities=("audio", "text")
    )
    message.audio.send(np.ones(480, dtype=np.int16))
    generation.messages.send(message)  # no await from here on: nothing else runs
    assert [p.message.item_id for p in playout.pulled] == ["item_1"]
    segment = playout.pulled[0].segment
    assert segment is not None and segment.pushed_ms == 20.0
    message.audio.close()
    message.text.close()
    generation.messages.close()
    await clock.advance(0.1)
    await run  # the generation ended: the run returns once the segment played
    assert segment.done
    await owner.aclose()
