"""`Flag` behaves as `asyncio.Event` does: the same operations, in any order, wake the same
waiters and leave the same state (a property test runs both side by side)."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from vocalis.utils.flag import Flag

_OPS = st.lists(
    st.one_of(
        st.just(("set", 0)),
        st.just(("clear", 0)),
        st.just(("wait", 0)),
        st.tuples(st.just("cancel"), st.integers(0, 20)),
        st.tuples(st.just("turns"), st.integers(0, 3)),
    ),
    max_size=40,
)


async def _run(flag: Flag | asyncio.Event, ops: list[tuple[str, int]]) -> list[object]:
    """Apply `ops`; the observable outcome: the flag after each step and each waiter's end."""
    waiters: list[asyncio.Task[bool]] = []
    seen: list[object] = []
    for op, arg in ops:
        if op == "set":
            flag.set()
        elif op == "clear":
            flag.clear()
        elif op == "wait":
            waiters.append(asyncio.ensure_future(flag.wait()))
        elif op == "cancel" and waiters:
            waiters[arg % len(waiters)].cancel()
        else:
            for _ in range(arg):
                await asyncio.sleep(0)
        seen.append(flag.is_set())
    for _ in range(3):
        await asyncio.sleep(0)
    for waiter in waiters:
        seen.append(
            "cancelled" if waiter.cancelled() else waiter.result() if waiter.done() else "waiting"
        )
        waiter.cancel()
    await asyncio.gather(*waiters, return_exceptions=True)
    return seen


@settings(max_examples=200, deadline=None)
@given(ops=_OPS)
def test_a_flag_is_an_event(ops: list[tuple[str, int]]) -> None:
    assert asyncio.run(_run(Flag(), ops)) == asyncio.run(_run(asyncio.Event(), ops))
