"""How a response's playout begins its messages: synchronously, and nothing when closing.

The first message is begun synchronously as a run is created (`prestart`), the next one as
the previous message's audio ends, and one the provider announces while the run waits inside
that announcement (the first-audio path: its queued audio reaches the sink with no loop turn).
All spawn the text pump on the session's task owner. When the session closes while a reply is
in flight, that owner refuses new tasks — the playout must then begin nothing rather than
raise out of the scheduler's task.
"""

from __future__ import annotations

import asyncio

import numpy as np

from vocalis.providers.base import Generation, MessageGeneration
from vocalis.runtime.playout import ResponsePlayout
from vocalis.runtime.tasks import TaskOwner
from vocalis.transports.memory import MemoryTransport
from vocalis.utils.clock import ManualClock, settle


def _message(item_id: str) -> MessageGeneration:
    return MessageGeneration(
        item_id=item_id, response_id="resp_1", output_index=0, modalities=("audio", "text")
    )


def _playout(
    owner: TaskOwner, generation: Generation, clock: ManualClock | None = None
) -> ResponsePlayout:
    clock = clock or ManualClock()
    transport = MemoryTransport(clock)
    return ResponsePlayout(
        generation,
        sink=transport.audio_out,
        text_sink=transport.text_out,
        clock=clock,
        owner=owner,
        sample_rate=24000,
    )


async def test_prestart_on_a_closed_owner_begins_nothing() -> None:
    owner = TaskOwner("session")
    await owner.aclose()
    generation = Generation(response_id="resp_1")
    generation.messages.send(_message("item_1"))
    playout = _playout(owner, generation)
    playout.prestart()  # raised "session is closed; cannot start text:item_1" before
    assert playout.pulled == []


async def test_prestart_on_an_open_owner_begins_the_first_message() -> None:
    owner = TaskOwner("session")
    generation = Generation(response_id="resp_1")
    generation.messages.send(_message("item_1"))
    playout = _playout(owner, generation)
    playout.prestart()
    assert [p.message.item_id for p in playout.pulled] == ["item_1"]
    await owner.aclose()


async def test_a_message_announced_while_the_run_waits_is_begun_in_that_send() -> None:
    owner = TaskOwner("session")
    generation = Generation(response_id="resp_1")
    clock = ManualClock()
    playout = _playout(owner, generation, clock)
    run = asyncio.create_task(playout.run())
    await settle()  # the run waits for a message
    assert playout.pulled == []
    message = _message("item_1")
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
