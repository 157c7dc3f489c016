"""One active response at a time, whatever happens: the reply scheduler, property-tested.

Random sequences of what the runtime and the provider do — replies queued, the server
starting its own (VAD) response, responses ending, re-sync holds taken and released, the
provider refusing a request because one of its own responses won the race — run against the
real `ReplyScheduler` on a `ManualClock`. After every step:

* never two active responses: a request is never sent while a response is active on the
  provider, another request is in flight, or replies are held;
* nothing is lost: every queued request is eventually sent, dropped as unwanted, or still
  queued — and once everything ended and no hold is left, the queue drains.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from functools import partial

from hypothesis import given, settings
from hypothesis import strategies as st

from vocalis.providers.base import (
    ErrorKind,
    Generation,
    GenerationDone,
    Modality,
    OperationError,
)
from vocalis.runtime.scheduler import ReplyRequest, ReplyScheduler
from vocalis.runtime.speech import SpeechHandle
from vocalis.utils.clock import ManualClock, wait_idle


class Provider:
    """Just enough of a provider: `generate_reply` answers with a new Generation, or refuses
    (BUSY) when the server's own response is active — as OpenAI does."""

    def __init__(self) -> None:
        self.server_active: list[Generation] = []
        self.violations: list[str] = []
        self.sent = 0
        self.scheduler: ReplyScheduler | None = None
        self._ids = 0

    def new(self) -> Generation:
        self._ids += 1
        return Generation(response_id=f"resp_{self._ids}")

    async def generate_reply(
        self,
        *,
        instructions: str | None = None,
        tool_choice: str | None = None,
        output_modalities: Sequence[Modality] | None = None,
    ) -> Generation:
        scheduler = self.scheduler
        assert scheduler is not None
        if scheduler.held:
            self.violations.append("sent while replies were held")
        if any(not g.done.done() for g in self.server_active):
            raise OperationError(ErrorKind.BUSY, "conversation already has an active response")
        self.sent += 1
        return self.new()


def finish(generation: Generation) -> None:
    if not generation.done.done():
        generation.done.set_result(GenerationDone(generation.response_id, "completed"))


STEPS = st.lists(
    st.sampled_from(["enqueue", "unwanted", "server", "end_one", "hold", "release", "tick"]),
    max_size=30,
)


async def scenario(steps: list[str]) -> None:
    clock = ManualClock()
    provider = Provider()
    started: list[Generation] = []

    def start_run(generation: Generation, request: ReplyRequest) -> None:
        active = [g for g in started + provider.server_active if not g.done.done()]
        if active:
            provider.violations.append("two active responses")
        started.append(generation)

    scheduler = ReplyScheduler(
        provider,  # type: ignore[arg-type]
        clock,
        start_run=start_run,
        on_error=lambda _r, _e: None,
        on_queue_changed=lambda _n: None,
    )
    provider.scheduler = scheduler
    task = asyncio.create_task(scheduler.run())
    queued = 0
    for step in steps:
        if step in ("enqueue", "unwanted"):
            queued += 1
            wanted = step == "enqueue"
            scheduler.enqueue(
                ReplyRequest("reply", SpeechHandle("reply"), still_wanted=partial(bool, wanted))
            )
        elif step == "server":
            generation = provider.new()
            provider.server_active.append(generation)
            scheduler.track(generation)
        elif step == "end_one":
            running = [g for g in started + provider.server_active if not g.done.done()]
            if running:
                finish(running[0])
        elif step == "hold":
            scheduler.hold("resync")
        elif step == "release":
            scheduler.release_hold("resync")
        await clock.advance(0.3)  # "tick" too: retries after a refusal are timed
        assert provider.violations == []
    # Everything ends, holds are released: nothing stays queued.
    scheduler.release_hold("resync")
    for _ in range(queued + 2):
        for generation in started + provider.server_active:
            finish(generation)
        await clock.advance(0.3)
    await wait_idle()
    assert provider.violations == []
    assert scheduler.pending == 0
    task.cancel()


@settings(max_examples=150, deadline=None)
@given(steps=STEPS)
def test_never_two_active_responses_and_nothing_stays_queued(steps: list[str]) -> None:
    asyncio.run(scenario(steps))
