"""History sync and reconnect replay: what to send so the provider remembers what was heard.

Two decisions, both from the protocol state (mirror, aliases, running responses) and the
runtime's heard history, with no I/O:

* `plan_history_ops` — the minimal delete/create operations for `sync_history`. Audio items
  the provider holds are never rewritten as text (their audio is the truth; `truncate` records
  what was heard), not even to fix the order: they are pinned and the text items around them
  (tool outputs, typed turns) move instead. Items of a running response and items newer than
  anything the caller's list refers to are never deleted: they are newer than the caller's
  view (deleting a user turn that was committed while the caller was building its list would
  erase what the caller said).
* `replay_history` — what a fresh provider session must hold after a reconnect: the heard
  history, plus user turns and tool items the provider added after the last sync. Assistant
  messages only ever come from the heard history: the provider cannot know what was heard.
* `unanswered_input` — whether that replay ends with caller input the lost session never
  started answering (a drop between the caller's turn and `response.created`): nobody will
  answer it in the new session unless the runtime asks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vocalis.conversation.items import (
    ConversationItem,
    FunctionCallItem,
    FunctionCallOutputItem,
    MessageItem,
)
from vocalis.providers.openai.mirror import MirrorItem, plan_sync
from vocalis.providers.openai.ops import ClientOp
from vocalis.providers.openai.protocol import OpenAIProtocol
from vocalis.providers.openai.wire_items import provider_item_id, replayable_history, to_wire_item


def differs(entry: MirrorItem, item: ConversationItem) -> bool:
    """Whether the provider's version of an item must be replaced by the caller's."""
    if isinstance(item, MessageItem):
        if entry.type != "message" or entry.role != item.role:
            return True
        if entry.has_audio and not entry.created_by_client:
            return False  # audio is the truth; truncation handles what was heard
        return entry.text != item.text
    if isinstance(item, FunctionCallItem):
        return entry.type != "function_call" or entry.arguments != item.arguments
    return entry.type != "function_call_output" or entry.output != item.output


@dataclass(slots=True)
class SyncedPrefix:
    """The first history items a sync found equal on the provider, in place and in order.

    Why: the runtime re-syncs after every response, and a plan over the whole call costs
    ~3 µs per history item (a long call: milliseconds per response, all at once when many
    sessions finish together). While the mirror's order changed only by appends
    (`ConversationMirror.layout`), none of the prefix's entries changed (`touched`), no
    alias moved, and the history still starts with the same item objects, that prefix
    needs nothing and the plan covers only what follows it — with exactly the operations a
    plan over everything would make. Items are compared by identity: the runtime replaces
    a history item rather than editing what the provider's copy depends on (a caller
    transcript that arrives later updates the mirror too, which touches the entry).
    """

    items: list[ConversationItem] = field(default_factory=list)
    pids: list[str] = field(default_factory=list)
    index: dict[str, int] = field(default_factory=dict)
    layout: int = -1
    alias_changes: int = -1

    def valid_length(self, core: OpenAIProtocol, items: list[ConversationItem]) -> int:
        """How much of the prefix still holds for `items` (consumes the mirror's touches)."""
        mirror = core.mirror
        touched, mirror.touched = mirror.touched, set()
        if mirror.layout != self.layout or core.items.alias_changes != self.alias_changes:
            self.truncate(0)
            return 0
        held = min(len(self.items), len(items))
        for item_id in touched:
            at = self.index.get(item_id)
            if at is not None and at < held:
                held = at
        if self.items[:held] != items[:held]:  # same objects: one C loop, no __eq__ call
            held = next(i for i in range(held) if self.items[i] != items[i])
        self.truncate(held)
        return held

    def truncate(self, length: int) -> None:
        for pid in self.pids[length:]:
            del self.index[pid]
        del self.items[length:]
        del self.pids[length:]

    def extend(
        self,
        core: OpenAIProtocol,
        items: list[ConversationItem],
        local: list[tuple[str, int]],
        changed: set[str],
    ) -> None:
        """After a plan with no operations: the items (`local`: planned pid, index in
        `items`) that now match the provider one for one, up to the first that does not."""
        mirror = core.mirror
        start = at = len(self.items)
        order = mirror.ids_from(start)
        for pid, index in local:
            # A skipped or duplicate item in between, another order, a difference left
            # alone (protected) or an item still being generated ends the prefix.
            k = at - start
            if index != at or k >= len(order) or order[k] != pid or pid in changed:
                break
            entry = mirror.get(pid)
            if entry is None or entry.status == "in_progress":
                break
            self.items.append(items[at])
            self.pids.append(pid)
            self.index[pid] = at
            at += 1
        self.layout = mirror.layout
        self.alias_changes = core.items.alias_changes


def plan_history_ops(
    core: OpenAIProtocol, items: list[ConversationItem], synced: SyncedPrefix | None = None
) -> list[ClientOp[object]]:
    """Client ops (registered with `core`) that make the provider conversation equal `items`.

    With `synced` (one per session, kept between calls) only what follows the prefix the
    last call found equal is planned; the operations are the same.
    """
    skip = synced.valid_length(core, items) if synced is not None else 0
    mirror = core.mirror
    remote = mirror.ids_from(skip)
    positions = {item_id: skip + i for i, item_id in enumerate(remote)}
    held = synced.index if synced is not None and skip else {}
    by_pid: dict[str, ConversationItem] = {}
    local: list[str] = []
    planned: list[tuple[str, int]] = []  # (pid, index in items) of each planned item
    changed: set[str] = set()
    for index in range(skip, len(items)):
        item = items[index]
        pid = core.resolve_id(item.id)
        entry = mirror.get(pid)
        if entry is None:
            pid = provider_item_id(item.id)
            entry = mirror.get(pid)
        if isinstance(item, MessageItem) and not item.text.strip():
            never_heard = item.role == "assistant" and item.played_ms == 0
            if entry is None or never_heard:
                continue  # nothing to create; an unheard provider item gets deleted
        if pid in by_pid or pid in held:
            continue
        by_pid[pid] = item
        local.append(pid)
        planned.append((pid, index))
        if entry is not None and differs(entry, item):
            changed.add(pid)
    ops = _ops_for(core, remote, positions, local, by_pid, changed, skip, synced)
    if synced is not None and not ops:
        synced.extend(core, items, planned, changed)
    return ops


def history_in_sync(
    core: OpenAIProtocol, items: list[ConversationItem], synced: SyncedPrefix
) -> bool:
    """Whether making the provider conversation equal `items` takes no operation.

    Exactly `plan_history_ops`'s answer (and, when none, its growth of `synced`). The ops of
    a plan that has some are withdrawn unsent (never registered as far as the core knows),
    so the sync that sends them plans them again, under its own lock.
    """
    ops = plan_history_ops(core, items, synced)
    for op in ops:
        core.ops.pop(op.op_id)
    return not ops


def _ops_for(
    core: OpenAIProtocol,
    remote: list[str],
    positions: dict[str, int],
    local: list[str],
    by_pid: dict[str, ConversationItem],
    changed: set[str],
    skip: int,
    synced: SyncedPrefix | None,
) -> list[ClientOp[object]]:
    """The plan of `plan_history_ops` past its first `skip` items (equal on both sides)."""
    if not changed and remote == local:
        # The usual re-sync after a response: both sides gained the same items. A plan over
        # equal orders with nothing changed keeps everything (`plan_sync`), so none is made.
        return []
    mirror = core.mirror
    protected = core.active_item_ids()
    known = [positions[pid] for pid in local if pid in positions]
    # The skipped prefix is known too: its last item is the newest one unless later ones are.
    newest = max(known) if known else skip - 1
    any_known = bool(known) or skip > 0
    for item_id in remote:
        entry = mirror.get(item_id)
        assert entry is not None
        if entry.status == "in_progress" or (
            positions[item_id] > newest and (any_known or not entry.created_by_client)
        ):
            protected.add(item_id)
    # The provider's own audio items are never moved by delete + create (that would make
    # them text): when the orders disagree, the text items around them move instead.
    pinned = {
        pid
        for pid in local
        if pid not in changed
        and (entry := mirror.get(pid)) is not None
        and entry.has_audio
        and not entry.created_by_client
    }
    anchor = synced.pids[skip - 1] if synced is not None and skip else None
    plan = plan_sync(
        remote, local, changed=changed, protected=protected, pinned=pinned, anchor=anchor
    )
    ops: list[ClientOp[object]] = []
    for pid in plan.deletes:
        decision = core.delete(pid)
        if isinstance(decision, ClientOp):
            ops.append(decision)
    for pid, previous in plan.creates:
        item = by_pid[pid]
        ops.append(
            core.create(
                to_wire_item(item, pid),
                local_id=item.id,
                previous_item_id=previous if previous is not None else "root",
            )
        )
    return ops


def replay_history(
    core: OpenAIProtocol, heard: list[ConversationItem], heard_seq: int
) -> list[ConversationItem]:
    """Items to re-create in a fresh session (call while the mirror still holds the old one).

    `heard_seq` is the mirror's insertion counter at the last `sync_history`.
    """
    known = {core.resolve_id(i.id) for i in heard} | {i.id for i in heard}
    in_flight = core.active_item_ids()
    extra: list[ConversationItem] = []
    for entry in core.mirror.items():
        if entry.seq <= heard_seq or entry.id in known or entry.id in in_flight:
            continue
        if entry.type == "message" and entry.role != "user":
            continue
        if entry.type == "function_call" and entry.status not in (None, "completed"):
            continue
        converted = entry.to_conversation_item()
        if converted is not None:
            extra.append(converted)
    return replayable_history(list(heard) + extra)


def _is_caller_input(item: ConversationItem) -> bool:
    return isinstance(item, FunctionCallOutputItem) or (
        isinstance(item, MessageItem) and item.role == "user"
    )


def unanswered_input(core: OpenAIProtocol, replay: list[ConversationItem]) -> str | None:
    """The id of the replay's last item when it is caller input that nothing answers.

    Call with the replay, while the mirror still holds the lost session. "Nothing answers"
    means the lost session holds no assistant message or function call after that input (not
    even one still streaming); a response that was created but had announced no item yet
    answered nothing either.
    """
    if not replay or not _is_caller_input(replay[-1]):
        return None
    last = replay[-1]
    mirror = core.mirror
    entries = mirror.items()
    pid = core.resolve_id(last.id)
    if pid in mirror:
        start = next(i for i, entry in enumerate(entries) if entry.id == pid) + 1
    else:  # not in the provider session: look after the newest caller input it holds
        inputs = [
            i
            for i, entry in enumerate(entries)
            if entry.type == "function_call_output"
            or (entry.type == "message" and entry.role == "user")
        ]
        start = inputs[-1] + 1 if inputs else 0
    for entry in entries[start:]:
        if entry.type == "function_call" or (entry.type == "message" and entry.role == "assistant"):
            return None
    return last.id
