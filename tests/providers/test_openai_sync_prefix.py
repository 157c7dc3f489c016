"""A sync that skips the prefix it already found equal plans exactly what a full sync plans.

`plan_history_ops(core, items, synced)` re-plans only what follows the prefix the previous
sync found equal on both sides (the runtime syncs after every response, so without it a long
call pays a plan over its whole history per response). The property: over random steps —
items both sides gain, provider-only and history-only items, deletes, transcripts,
truncations, client-created marks, alias moves, history items replaced, removed, inserted in
the middle or repeated, the server applying a plan — two identical cores driven alike get
the same operations at every sync, one planning from scratch, one with its `SyncedPrefix`.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from vocalis.conversation.items import (
    ConversationItem,
    FunctionCallOutputItem,
    MessageItem,
    Role,
)
from vocalis.providers.openai.formats import audio_format
from vocalis.providers.openai.history import SyncedPrefix, history_in_sync, plan_history_ops
from vocalis.providers.openai.ops import ClientOp
from vocalis.providers.openai.protocol import OpenAIProtocol

KINDS = (
    "both",
    "both",
    "both",
    "both",
    "provider_only",
    "history_only",
    "in_progress",
    "complete",
    "delete",
    "transcript",
    "truncate",
    "client_created",
    "alias",
    "replace",
    "remove",
    "insert",
    "duplicate",
    "apply",
    "sync",
    "sync",
    "sync",
)
Step = tuple[str, int]


def _message(item_id: str, role: str, status: str = "completed") -> dict[str, Any]:
    part = "input_audio" if role == "user" else "output_audio"
    return {
        "id": item_id,
        "type": "message",
        "role": role,
        "status": status,
        "content": [{"type": part, "transcript": f"said {item_id}"}],
    }


class World:
    """One protocol core and the history list the runtime would hand to `sync_history`."""

    def __init__(self) -> None:
        self.core = OpenAIProtocol(audio_format=audio_format("pcm16"))
        self.items: list[ConversationItem] = []
        self.synced = SyncedPrefix()

    def step(self, kind: str, k: int, n: int) -> None:
        mirror = self.core.mirror
        ids = mirror.ids()
        pick = ids[k % len(ids)] if ids else None
        role: Role = "user" if k % 2 else "assistant"
        if kind in ("both", "provider_only", "in_progress"):
            status = "in_progress" if kind == "in_progress" else "completed"
            mirror.on_item_added(_message(f"i{n}", role, status), ids[-1] if ids else None)
            if kind == "both":
                played = 500.0 if role == "assistant" else None
                self.items.append(MessageItem(f"i{n}", role, f"said i{n}", played_ms=played))
        elif kind == "history_only":
            self.items.append(FunctionCallOutputItem(f"o{n}", call_id=f"c{n}", output="ok"))
        elif kind == "insert" and self.items:
            at = k % len(self.items)
            self.items.insert(at, MessageItem(f"t{n}", "user", f"typed {n}"))
        elif kind == "replace" and self.items:
            at = k % len(self.items)
            old = self.items[at]
            if isinstance(old, MessageItem):
                text = "" if k % 3 == 0 else f"edited {n}"
                self.items[at] = MessageItem(old.id, old.role, text, played_ms=old.played_ms)
        elif kind == "duplicate" and self.items:
            old = self.items[k % len(self.items)]
            self.items.append(MessageItem(old.id, "user", f"again {n}"))
        elif kind == "remove" and self.items:
            del self.items[k % len(self.items)]
        elif pick is not None:
            self._provider_change(kind, pick, k, n)

    def _provider_change(self, kind: str, pick: str, k: int, n: int) -> None:
        mirror = self.core.mirror
        if kind == "complete":
            mirror.on_item_done(_message(pick, "assistant"))
        elif kind == "delete":
            mirror.on_deleted(pick)
        elif kind == "transcript":
            mirror.on_transcript(pick, f"heard {n}")
        elif kind == "truncate":
            mirror.on_truncated(pick, 100)
        elif kind == "client_created":
            mirror.mark_client_created(pick)
        elif kind == "alias" and self.items:
            local = self.items[k % len(self.items)].id
            self.core.items.aliases[local] = pick
            self.core.items.alias_changes += 1

    def apply(self, ops: list[ClientOp[object]]) -> None:
        """The server does what the last plan asked (deletes, then creates in order)."""
        mirror = self.core.mirror
        for op in ops:
            event = op.event
            if event["type"] == "conversation.item.delete":
                mirror.on_deleted(str(event["item_id"]))
            elif event["type"] == "conversation.item.create":
                previous = event.get("previous_item_id")
                anchor = None if previous in (None, "root") else str(previous)
                if anchor is not None and anchor not in mirror:
                    continue
                mirror.on_item_added(dict(event["item"]), anchor)
                mirror.mark_client_created(str(event["item"]["id"]))


def _shape(ops: list[ClientOp[object]]) -> list[tuple[str, Any]]:
    return [(op.kind, op.event) for op in ops]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(KINDS), st.integers(0, 50)), max_size=60))
def test_incremental_sync_plans_what_a_full_sync_plans(steps: list[Step]) -> None:
    full, incremental = World(), World()
    last: list[ClientOp[object]] = []
    for n, (kind, k) in enumerate(steps):
        if kind == "sync":
            expected = plan_history_ops(full.core, list(full.items))
            got = plan_history_ops(incremental.core, list(incremental.items), incremental.synced)
            assert _shape(got) == _shape(expected)
            last = expected
            continue
        if kind == "apply":
            full.apply(last)
            incremental.apply(last)
            last = []
            continue
        full.step(kind, k, n)
        incremental.step(kind, k, n)
    expected = plan_history_ops(full.core, list(full.items))
    got = plan_history_ops(incremental.core, list(incremental.items), incremental.synced)
    assert _shape(got) == _shape(expected)


def _unnumbered(ops: list[ClientOp[object]]) -> list[tuple[str, Any]]:
    """Ops without their event ids (a core that planned more has counted further)."""
    return [(op.kind, {k: v for k, v in op.event.items() if k != "event_id"}) for op in ops]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(KINDS), st.integers(0, 50)), max_size=60))
def test_the_synchronous_check_answers_as_the_plan_and_leaves_no_trace(steps: list[Step]) -> None:
    """`history_in_sync` (the runtime's no-task re-sync, `sync_history_nowait`) is True
    exactly when a full plan has no operation, and leaves nothing behind: no op registered,
    and the sync after it plans what it would have planned without the check."""
    full, checked = World(), World()
    last: list[ClientOp[object]] = []
    for n, (kind, k) in enumerate(steps):
        if kind == "sync":
            expected = plan_history_ops(full.core, list(full.items))
            pending = checked.core.pending_op_ids()
            in_sync = history_in_sync(checked.core, list(checked.items), checked.synced)
            assert in_sync == (not expected)
            assert checked.core.pending_op_ids() == pending
            got = plan_history_ops(checked.core, list(checked.items), checked.synced)
            assert _unnumbered(got) == _unnumbered(expected)
            last = expected
        elif kind == "apply":
            full.apply(last)
            checked.apply(last)
            last = []
        else:
            full.step(kind, k, n)
            checked.step(kind, k, n)


def test_a_steady_call_skips_what_it_already_synced() -> None:
    """Each response adds one item on both sides: the prefix grows with it, no op is made."""
    world = World()
    for n in range(40):
        world.step("both", n, n)
        assert plan_history_ops(world.core, list(world.items), world.synced) == []
        assert len(world.synced.items) == n + 1
    world.core.mirror.on_transcript("i5", "late transcript")
    assert plan_history_ops(world.core, list(world.items), world.synced) == []
    assert len(world.synced.items) == 40  # re-checked from the touched item on, and kept
