"""A response's playout on a session that is closing starts nothing new.

The first message is begun synchronously as a run is created (`prestart`), and the next one
as the previous message's audio ends; both spawn the text pump on the session's task owner.
When the session closes while a reply is in flight, that owner refuses new tasks — the
playout must then begin nothing rather than raise out of the scheduler's task.
"""

from __future__ import annotations

from vocalis.providers.base import Generation, MessageGeneration
from vocalis.runtime.playout import ResponsePlayout
from vocalis.runtime.tasks import TaskOwner
from vocalis.transports.memory import MemoryTransport
from vocalis.utils.clock import ManualClock


def _message(item_id: str) -> MessageGeneration:
    return MessageGeneration(
        item_id=item_id, response_id="resp_1", output_index=0, modalities=("audio", "text")
    )


def _playout(owner: TaskOwner, generation: Generation) -> ResponsePlayout:
    clock = ManualClock()
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
