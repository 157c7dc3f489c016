"""The local conversation history, kept in conversation order.

Items do not arrive in conversation order: a response's assistant messages are only known
(with their heard text) after playout, and by then the caller's next utterance — the barge-in
that cut it — may already be committed. Each item therefore carries an order key taken when
its place in the conversation was decided (a response: when it was created; a user turn: when
its speech started; a tool output: when it was sent) and the history stays sorted by it.
Items are replaced in place by id (a user transcript arriving late, a heard-text update).
"""

from __future__ import annotations

import bisect
import itertools
from typing import Any

from vocalis.conversation.items import ConversationItem, history_to_json

# (key, sub) packed into one int: a long call keeps one per item, and a tuple of two ints
# cost ~80 bytes where this costs ~32 (#14). `sub` (an item's index within its response)
# stays far below the 2**20 it may reach.
_SUB_BITS = 20


class History:
    def __init__(self) -> None:
        self._keys: list[int] = []
        self._items: list[ConversationItem] = []
        # id -> item: an add (one per response and turn) and a `get` find an item without
        # walking a long call's history; only a replace or remove looks for its position.
        self._by_id: dict[str, ConversationItem] = {}
        self._seq = itertools.count(1)

    def next_key(self) -> int:
        """Reserve a place at the current end of the conversation."""
        return next(self._seq)

    def add(self, item: ConversationItem, key: int, sub: int = 0) -> None:
        """Insert `item` at (key, sub); an item with the same id is replaced in place."""
        existing = self.index_of(item.id)
        if existing is not None:
            self._items[existing] = item
            self._by_id[item.id] = item
            return
        if not 0 <= sub < 1 << _SUB_BITS:
            raise ValueError(f"sub-position {sub} out of range")
        order = key << _SUB_BITS | sub
        index = bisect.bisect_right(self._keys, order)
        self._keys.insert(index, order)
        self._items.insert(index, item)
        self._by_id[item.id] = item

    def get(self, item_id: str) -> ConversationItem | None:
        return self._by_id.get(item_id)

    def index_of(self, item_id: str) -> int | None:
        if item_id not in self._by_id:
            return None
        return next(i for i, item in enumerate(self._items) if item.id == item_id)

    def remove(self, item_id: str) -> None:
        index = self.index_of(item_id)
        if index is not None:
            del self._items[index]
            del self._keys[index]
            del self._by_id[item_id]

    def items(self) -> list[ConversationItem]:
        return list(self._items)

    def last(self) -> ConversationItem | None:
        """The newest item in conversation order (no copy of the history, unlike `items`)."""
        return self._items[-1] if self._items else None

    def __len__(self) -> int:
        return len(self._items)

    def to_json(self) -> dict[str, Any]:
        return history_to_json(self._items)
