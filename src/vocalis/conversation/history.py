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

OrderKey = tuple[int, int]


class History:
    def __init__(self) -> None:
        self._keys: list[OrderKey] = []
        self._items: list[ConversationItem] = []
        self._seq = itertools.count(1)

    def next_key(self) -> int:
        """Reserve a place at the current end of the conversation."""
        return next(self._seq)

    def add(self, item: ConversationItem, key: int, sub: int = 0) -> None:
        """Insert `item` at (key, sub); an item with the same id is replaced in place."""
        existing = self.index_of(item.id)
        if existing is not None:
            self._items[existing] = item
            return
        order = (key, sub)
        index = bisect.bisect_right(self._keys, order)
        self._keys.insert(index, order)
        self._items.insert(index, item)

    def get(self, item_id: str) -> ConversationItem | None:
        index = self.index_of(item_id)
        return None if index is None else self._items[index]

    def index_of(self, item_id: str) -> int | None:
        for index, item in enumerate(self._items):
            if item.id == item_id:
                return index
        return None

    def remove(self, item_id: str) -> None:
        index = self.index_of(item_id)
        if index is not None:
            del self._items[index]
            del self._keys[index]

    def items(self) -> list[ConversationItem]:
        return list(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def to_json(self) -> dict[str, Any]:
        return history_to_json(self._items)
