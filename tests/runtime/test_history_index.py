"""`History` finds items by id through its index exactly as a walk of the list would.

The reference is the list the history keeps in order (`items()`): over random adds (new ids
at any order key, replacements of known ids), removals and lookups, `get` and `index_of`
answer what a linear search of `items()` answers, and `last` is its final item.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from vocalis.conversation.history import History
from vocalis.conversation.items import MessageItem

Op = tuple[str, int, int]


def _search(history: History, item_id: str) -> int | None:
    return next((i for i, item in enumerate(history.items()) if item.id == item_id), None)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(("add", "add", "remove", "get")), st.integers(0, 12), st.integers(0, 30)
        ),
        max_size=80,
    )
)
def test_lookups_agree_with_a_search_of_the_ordered_items(ops: list[Op]) -> None:
    history = History()
    for n, (kind, ident, key) in enumerate(ops):
        item_id = f"item{ident}"
        if kind == "add":
            history.add(MessageItem(item_id, "user", f"text {n}"), key)
        elif kind == "remove":
            history.remove(item_id)
        at = _search(history, item_id)
        assert history.index_of(item_id) == at
        found = history.get(item_id)
        assert found is (None if at is None else history.items()[at])
        assert history.last() is (history.items()[-1] if len(history) else None)
    ids = [item.id for item in history.items()]
    assert len(ids) == len(set(ids)) == len(history)
