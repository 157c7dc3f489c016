"""A settled response is freed by reference counting, without the cyclic collector.

Why it matters (#17): a response holds its segments, channels, tasks and texts — tens of
kilobytes. Caught in a reference cycle, all of it waited for the collector's next full
collection (rare by design under load: `vocalis.utils.gc_tuning`), so every speaking session
kept the responses of the last minute or so, and each full collection had them to walk.
The collector stays disabled while the responses run, so nothing but reference counting can
free them.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

from conformance_support import Harness, harness

from vocalis.runtime.events import Interrupted
from vocalis.runtime.response import ResponseRun

ANSWER = (
    "Your order shipped yesterday from our main warehouse and should arrive on Friday "
    "afternoon; you will get a text message with the tracking link."
)


async def half_played(h: Harness) -> weakref.ref[ResponseRun]:
    """The running response, once its first message played 0.5 s (only a weak reference
    leaves this function)."""
    run = h.session.responses[0]
    await h.until(lambda: run.generation.done.done())
    item_id = run.playout.pulled[0].message.item_id
    await h.play_until(lambda: h.segment_started(item_id))
    await h.play(0.5)
    return weakref.ref(run)


@contextmanager
def collector_off() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


async def test_played_and_cut_responses_are_freed_when_they_settle() -> None:
    scenario = {"responses": [{"say": "Let me check."}, {"say": ANSWER}, {"say": "Sure."}]}
    async with harness(scenario) as h:
        with collector_off():
            h.say("Where is my order?")
            await h.until(lambda: len(h.session.responses) == 1)
            played = weakref.ref(h.session.responses[0])
            await h.play_until(lambda: not h.session.responses)

            h.say("And when does it arrive?")
            await h.until(lambda: len(h.session.responses) == 1)
            cut = await half_played(h)
            h.say("Stop.")
            await h.event(Interrupted)
            await h.play_until(lambda: not h.session.responses)
            await h.play(0.1)
            h.runs.clear()  # the harness's own record of every run

            assert played() is None
            assert cut() is None
