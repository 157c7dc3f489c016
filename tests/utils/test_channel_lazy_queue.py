"""`Channel` creates its queue on the first queued item (a forwarded channel never needs
one): the synchronous operations behave exactly as with the queue made up front.

`_EagerChannel` is the replaced code's queue handling, kept verbatim as the reference.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from vocalis.utils.channel import Channel


class _EagerChannel:
    """The queue handling before the change (send, forward, fail, try_recv, len)."""

    def __init__(self) -> None:
        self._items: deque[int] = deque()
        self._closed = False
        self._forward: Callable[[int], None] | None = None

    def __len__(self) -> int:
        return len(self._items)

    def send(self, item: int) -> None:
        if self._closed:
            return
        forward = self._forward
        if forward is None:
            self._items.append(item)
            return
        try:
            forward(item)
        except Exception:
            self._fail()

    def forward_to(self, callback: Callable[[int], None]) -> None:
        self._forward = callback
        items = self._items
        while items and self._forward is callback:
            try:
                callback(items.popleft())
            except Exception:
                self._fail()

    def stop_forwarding(self) -> None:
        self._forward = None

    def _fail(self) -> None:
        self._forward = None
        self._items.clear()
        self._closed = True

    def try_recv(self) -> int | None:
        return self._items.popleft() if self._items else None

    def close(self) -> None:
        self._closed = True


_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("send"), st.integers(0, 9)),
        st.tuples(st.just("forward"), st.integers(0, 9)),  # fails on this item
        st.tuples(st.just("stop"), st.just(0)),
        st.tuples(st.just("try_recv"), st.just(0)),
        st.tuples(st.just("close"), st.just(0)),
    ),
    max_size=40,
)


@settings(max_examples=400, deadline=None)
@given(ops=_OPS)
def test_lazy_queue_behaves_as_the_eager_one(ops: list[tuple[str, int]]) -> None:
    new: Channel[int] = Channel()
    old = _EagerChannel()
    got_new: list[int] = []
    got_old: list[int] = []

    def taker(into: list[int], bad: int) -> Callable[[int], None]:
        def take(item: int) -> None:
            if item == bad:
                raise ValueError(item)
            into.append(item)

        return take

    for op, arg in ops:
        if op == "send":
            new.send(arg)
            old.send(arg)
        elif op == "forward":
            new.forward_to(taker(got_new, arg))
            old.forward_to(taker(got_old, arg))
        elif op == "stop":
            new.stop_forwarding()
            old.stop_forwarding()
        elif op == "try_recv":
            assert new.try_recv() == old.try_recv()
        else:
            new.close()
            old.close()
        assert got_new == got_old
        assert len(new) == len(old)
        assert new.closed == old._closed
