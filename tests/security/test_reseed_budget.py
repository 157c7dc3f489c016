"""A Gemini service cannot make the client reconnect without end (issue #14).

Under `HeardStrategy.RESEED` every heard checkpoint that found a model turn the caller did not
hear opened a new connection and sent the whole heard history again. A service producing
such turns one after another (here: one-character text turns in an audio session, paced so
each settles) had `vocalis run` reconnect 2,086 times in 27 s, traffic quadratic in the call's
length, +40 MB over an idle call. `ReseedBudget` caps re-seeds per minute; past it the
checkpoint notes what was unheard and the re-seed waits for a checkpoint the budget allows
(the memory is made exact then, not given up on).
"""

from __future__ import annotations

from bench.attacks import _run_call
from bench.common import REPO
from bench.hostile import HostileGemini, gemini_empty_items
from hypothesis import given, settings
from hypothesis import strategies as st

from vocalis.conversation.items import MessageItem
from vocalis.providers.gemini.heard import (
    Correct,
    HeardStrategy,
    NoChange,
    Reseed,
    ReseedBudget,
    ServerTurn,
    plan_heard_sync,
)

PER_MINUTE = 6


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(0, 30, allow_nan=False), min_size=1, max_size=80),
    st.integers(1, 8),
)
def test_no_sixty_seconds_hold_more_re_seeds_than_the_budget(
    gaps: list[float], per_minute: int
) -> None:
    budget = ReseedBudget(per_minute)
    now, spent = 0.0, []
    for gap in gaps:
        now += gap
        if budget.allows(now):
            budget.spend(now)
            spent.append(now)
    for start in spent:
        assert sum(1 for t in spent if start <= t < start + 60.0) <= per_minute
    # A checkpoint over a minute after the last re-seed is allowed one again.
    assert budget.allows(now + 60.5)


def test_over_the_budget_the_checkpoint_notes_now_and_re_seeds_later() -> None:
    record = [ServerTurn("user", "u1", "hi"), ServerTurn("model", "m1", "hello there friend")]
    heard = [
        MessageItem("u1", "user", "hi"),
        MessageItem("m1", "assistant", "hello", interrupted=True),
    ]
    plan = plan_heard_sync(HeardStrategy.RESEED, record, heard, reseed_allowed=False)
    assert isinstance(plan, Correct) and [u.item_id for u in plan.unheard] == ["m1"]
    assert 'heard only: "hello"' in plan.note
    told = frozenset({"m1"})
    assert isinstance(
        plan_heard_sync(HeardStrategy.RESEED, record, heard, told, reseed_allowed=False), NoChange
    )
    later = plan_heard_sync(HeardStrategy.RESEED, record, heard, told, reseed_allowed=True)
    assert isinstance(later, Reseed) and list(later.items) == heard


async def test_unheard_turns_one_after_another_reconnect_vocalis_run_at_most_the_budget() -> None:
    """Model turns nobody hears, paced so each settles: every heard checkpoint re-seeded
    (hundreds of connections in seconds); now at most `max_reseeds_per_minute` (6) re-seeds
    in the call (its deadline is under a minute), the rest noted."""
    service = HostileGemini(gemini_empty_items(100_000, pace_s=0.004))
    async with service.serving() as url:
        run = await _run_call(REPO / "src", url, "--provider", "gemini", max_seconds=30, caller_s=3)
    assert run.code is not None, run.text
    assert 1 <= service.connections <= PER_MINUTE + 1, (service.connections, run.text)
