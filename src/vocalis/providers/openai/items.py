"""Conversation items as the server reports them: the mirror and the caller's ids.

Why a module of its own: `conversation.item.*` events (and an "already exists" error) change
what the provider conversation holds; `protocol.py` dispatches them here and keeps the client
operations. Every path that creates a create's success — `.added`, "already exists",
`.retrieved` — ends in `created`, so the caller's id maps to the provider's one alike.
"""

from __future__ import annotations

from typing import Any

from vocalis.providers.base import OpCompleted
from vocalis.providers.item_bound import ItemBound
from vocalis.providers.openai.assembly import ResponseAssembler
from vocalis.providers.openai.inputs import InputTracker
from vocalis.providers.openai.mirror import ConversationMirror
from vocalis.providers.openai.ops import OpRegistry, Pending
from vocalis.providers.openai.wire import ItemEvent, ItemRefEvent


class ConversationItems:
    """The provider conversation of one realtime session (survives reconnects)."""

    def __init__(
        self,
        *,
        bound: ItemBound,
        ops: OpRegistry,
        responses: ResponseAssembler,
        inputs: InputTracker,
    ) -> None:
        self._bound = bound
        self._ops = ops
        self._responses = responses
        self._inputs = inputs
        self.mirror = ConversationMirror(responses.accounts)
        # Caller (runtime) item id -> provider item id, kept across reconnects.
        self.aliases: dict[str, str] = {}
        # Counts changes of `aliases` (a sync's checked prefix holds only while it is unchanged).
        self.alias_changes = 0

    def resolve_id(self, item_id: str) -> str:
        """The provider id for a caller's item id (identity when never remapped)."""
        return self.aliases.get(item_id, item_id)

    def check_new_item(self, event: dict[str, Any]) -> None:
        """Before an event that may add an item to the mirror: past `max_call_items` items
        held, raise `OverItemBound` (the call ends, nothing is kept).

        Items the client already tracks (a `.done` after `.added`, a caller item) are always
        taken. The id is read as the handlers read it (`str()` of it, inside the malformed-
        event guard): an id that is not text is still an item they would keep, so it counts.
        """
        item = event.get("item")
        item_id = str(item["id"] if isinstance(item, dict) else event["item_id"])
        if item_id in self.mirror or item_id in self._responses.accounts:
            return
        self._bound.check(len(self.mirror))

    # ----------------------------------------------------------------- events

    def on_item_added(self, ev: ItemEvent, out: list[Any]) -> None:
        item = ev["item"]
        item_id = str(item["id"])
        previous = ev.get("previous_item_id")
        self.mirror.on_item_added(
            dict(item),
            str(previous) if previous is not None else None,
            anchored="previous_item_id" in ev,
        )
        pending = self._ops.pop_oldest("create", item_id=item_id)
        abandoned = self._ops.take_abandoned_create(item_id)
        if (
            pending is None
            and not abandoned
            and not self._responses.generating(item_id)
            and item_id not in self._inputs.committed
            and item.get("status") != "in_progress"  # response output, not one of ours
        ):
            # Server ignored our requested id: match the oldest create of the same kind.
            pending = self._ops.pop_create_like(item.get("type"), item.get("role"))
        if pending is None:
            return
        self.created(pending, item_id)
        out.append(OpCompleted(pending.op_id, item_id))

    def created(self, op: Pending, item_id: str) -> None:
        """`op` (a create, or the retrieve asked after one) found its item on the server:
        the mirror marks it ours and the caller's id maps to it — however the success came
        (`.added`, "already exists", `.retrieved`)."""
        self.mirror.mark_client_created(item_id)
        local_id = op.local_id
        if local_id is not None and self.aliases.get(local_id, local_id) != item_id:
            self.alias_changes += 1
            if local_id == item_id:
                del self.aliases[local_id]
            else:
                self.aliases[local_id] = item_id

    def on_item_retrieved(self, ev: ItemEvent, out: list[Any]) -> None:
        item = ev["item"]
        item_id = str(item["id"])
        if item_id not in self.mirror:
            self.mirror.on_item_added(dict(item), None, anchored=False)
        pending = self._ops.pop_oldest("retrieve", item_id=item_id)
        if pending is not None:  # asked for one of our creates
            self.created(pending, item_id)
            out.append(OpCompleted(pending.op_id, item_id))

    def on_item_done(self, ev: ItemEvent, out: list[Any]) -> None:
        previous = ev.get("previous_item_id")
        self.mirror.on_item_done(dict(ev["item"]), str(previous) if previous is not None else None)

    def on_item_truncated(self, ev: ItemRefEvent, out: list[Any]) -> None:
        item_id = str(ev["item_id"])
        audio_end_ms = int(ev.get("audio_end_ms") or 0)
        self.mirror.on_truncated(item_id, audio_end_ms)
        pending = self._ops.pop_oldest("truncate", item_id=item_id)
        if pending is not None:
            out.append(OpCompleted(pending.op_id, audio_end_ms))

    def on_item_deleted(self, ev: ItemRefEvent, out: list[Any]) -> None:
        item_id = str(ev["item_id"])
        self.gone(item_id)
        pending = self._ops.pop_oldest("delete", item_id=item_id)
        if pending is not None:
            out.append(OpCompleted(pending.op_id, None))

    # ----------------------------------------------------------------- error outcomes

    def exists(self, create: Pending) -> None:
        """A create found its id taken: the item we sent is there (its ack was lost)."""
        if create.wire_item is None or create.item_id is None:
            return
        previous = create.previous_item_id  # as sent: None appends, "root" is the start
        self.mirror.on_item_added(
            create.wire_item,
            None if previous == "root" else previous,
            anchored=previous is not None,
        )
        self.created(create, create.item_id)

    def gone(self, item_id: str) -> None:
        self.mirror.on_deleted(item_id)
        self._responses.accounts.pop(item_id, None)
        self._inputs.forget(item_id)
