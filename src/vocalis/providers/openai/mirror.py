"""A local mirror of the provider conversation, and the minimal history diff against it.

Why: the runtime's history says what the caller *heard*; the provider's conversation says what
the model *remembers*. To make the second equal the first we need to know what the provider
holds without asking it (no `retrieve` round-trips on the hot path). The mirror is updated only
from server events (`conversation.item.added/.done/.truncated/.deleted`,
`input_audio_buffer.committed`, transcription results), so it is as truthful as the server's
own event stream. The audio received per item is not counted here: it is read from the
provider core's item accounts (the one count, `providers/base.ItemAccount`).

`plan_sync` is the pure core of `sync_history`: given the provider's item ids and the wanted
ids, it keeps the longest common subsequence and deletes/creates the rest — the fewest
operations that turn one sequence into the other with insert-after semantics — except that
the provider's own audio items are pinned: kept in place first, since deleting and re-creating
one would turn what the caller said (or the model's voice) into text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any

from vocalis.conversation.items import (
    ConversationItem,
    FunctionCallItem,
    FunctionCallOutputItem,
    MessageItem,
    Role,
)
from vocalis.providers.base import ItemAccount

_TEXT_PARTS = frozenset({"input_text", "text", "output_text"})
_AUDIO_PARTS = frozenset({"input_audio", "audio", "output_audio"})
# Changed entries remembered between two syncs, at most (then a sync plans everything).
_TOUCHED_MAX = 256


@dataclass(slots=True)
class MirrorItem:
    """What the provider holds for one item (never the audio itself)."""

    id: str
    type: str
    role: str | None = None
    status: str | None = None
    # input/output text, or the audio transcript as far as the server reported it; empty for
    # the model's own audio messages (see `_voice_of_the_model`).
    text: str = ""
    has_audio: bool = False
    # Set by `conversation.item.truncated`; the server then drops the transcript.
    truncated_ms: int | None = None
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None
    output: str | None = None
    # Created by this client as text (sync/replay): such items have no audio to truncate.
    created_by_client: bool = False
    # Monotonic insertion counter (lets a replay pick items added after the last sync).
    seq: int = 0

    def to_conversation_item(self) -> ConversationItem | None:
        """Best-effort history item for replay (None for item types we do not replay)."""
        if self.type == "message" and self.role in ("user", "assistant", "system"):
            role: Role = self.role  # type: ignore[assignment]
            return MessageItem(id=self.id, role=role, text=self.text)
        if self.type == "function_call" and self.call_id is not None:
            return FunctionCallItem(
                id=self.id,
                call_id=self.call_id,
                name=self.name or "",
                arguments=self.arguments or "",
            )
        if self.type == "function_call_output" and self.call_id is not None:
            return FunctionCallOutputItem(
                id=self.id, call_id=self.call_id, output=self.output or ""
            )
        return None


def _apply_item_fields(entry: MirrorItem, item: dict[str, Any]) -> None:
    """Copy what an `item` payload says into `entry` (fields absent in the payload are kept)."""
    entry.type = str(item.get("type") or entry.type)
    if item.get("role") is not None:
        entry.role = str(item["role"])
    if item.get("status") is not None:
        entry.status = str(item["status"])
    for key in ("call_id", "name", "arguments", "output"):
        if item.get(key) is not None:
            setattr(entry, key, str(item[key]))
    content = item.get("content")
    if isinstance(content, list) and content:
        texts: list[str] = []
        for part in content:
            if not isinstance(part, dict):
                continue
            ptype = part.get("type")
            if ptype in _AUDIO_PARTS:
                entry.has_audio = True
                if part.get("transcript"):
                    texts.append(str(part["transcript"]))
            elif ptype in _TEXT_PARTS and part.get("text"):
                texts.append(str(part["text"]))
        # The server empties the transcript of a truncated item; keep the mirror the same.
        if entry.truncated_ms is None and texts and not _voice_of_the_model(entry):
            text = "".join(texts)
            if text != entry.text:  # equal: keep the copy the history may share
                entry.text = text


def _voice_of_the_model(entry: MirrorItem) -> bool:
    """An assistant audio item the provider generated: its text is never read here.

    Audio is the truth for it (`differs` never compares its text, a replay never takes an
    assistant message from the mirror), and the text lives once already in the item's
    account and the heard history; a second decoded copy per item was most of the mirror's
    share of a long call's memory (#14).
    """
    return entry.role == "assistant" and entry.has_audio and not entry.created_by_client


class ConversationMirror:
    """Ordered items of one provider session, keyed by provider item id."""

    def __init__(self, accounts: Mapping[str, ItemAccount] | None = None) -> None:
        self._items: dict[str, MirrorItem] = {}
        self._order: list[str] = []
        # The core's accounts of output items (read only; empty when used standalone).
        self._accounts: Mapping[str, ItemAccount] = accounts if accounts is not None else {}
        self._seq = 0
        # What changed since a sync last looked (`history.SyncedPrefix`): `layout` counts
        # every change of the order other than an append at the end (a move, an insert before
        # the end, a delete, a reset); `touched` holds the ids of entries whose fields changed
        # (the sync clears it). With both, a sync per response checks only what is new.
        self.layout = 0
        self.touched: set[str] = set()

    # ----------------------------------------------------------------- reading

    def ids(self) -> list[str]:
        return list(self._order)

    def ids_from(self, start: int) -> list[str]:
        """The ids from position `start` on (a sync that skips a prefix copies only the rest)."""
        return self._order[start:]

    def items(self) -> list[MirrorItem]:
        return [self._items[i] for i in self._order]

    def get(self, item_id: str) -> MirrorItem | None:
        return self._items.get(item_id)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._items

    def __len__(self) -> int:
        return len(self._order)

    @property
    def seq(self) -> int:
        """The last insertion counter handed out."""
        return self._seq

    def audio_ms(self, item_id: str) -> float:
        """Output audio received for `item_id` in ms (0.0 if none), from the core's account."""
        account = self._accounts.get(item_id)
        return account.received_ms if account is not None else 0.0

    def has_audio(self, item_id: str) -> bool:
        """The provider holds audio for this item (its content says so, or audio arrived)."""
        entry = self._items.get(item_id)
        return (entry is not None and entry.has_audio) or self.audio_ms(item_id) > 0

    # ----------------------------------------------------------------- updates

    def _touch(self, item_id: str) -> None:
        """Note a changed entry for the next sync; past a bound, count it as a new layout
        (nothing reads `touched` when no sync runs: it must not grow with the call)."""
        touched = self.touched
        touched.add(item_id)
        if len(touched) > _TOUCHED_MAX:
            touched.clear()
            self.layout += 1

    def _insert(self, entry: MirrorItem, previous_item_id: str | None, anchored: bool) -> None:
        """Insert after `previous_item_id`; `None` with `anchored` means the start, else append."""
        order = self._order
        if entry.id in self._items:
            order.remove(entry.id)
            self.layout += 1
        if anchored and previous_item_id is None:
            if order:
                self.layout += 1
            order.insert(0, entry.id)
        elif previous_item_id is not None and previous_item_id in self._items:
            at = order.index(previous_item_id) + 1
            if at != len(order):
                self.layout += 1
            order.insert(at, entry.id)
        else:
            order.append(entry.id)
        self._items[entry.id] = entry
        self._touch(entry.id)

    def on_item_added(
        self, item: dict[str, Any], previous_item_id: str | None, *, anchored: bool = True
    ) -> MirrorItem:
        """`conversation.item.added` (GA) / `.created` (beta): insert or refresh the item.

        `anchored` says whether the event carried `previous_item_id` at all; without it the
        item is appended (an explicit `null` means "first item").
        """
        item_id = str(item["id"])
        entry = self._items.get(item_id)
        if entry is None:
            self._seq += 1
            entry = MirrorItem(id=item_id, type=str(item.get("type") or "message"), seq=self._seq)
            self._insert(entry, previous_item_id, anchored)
        else:
            self._touch(item_id)
        _apply_item_fields(entry, item)
        return entry

    def on_item_done(self, item: dict[str, Any], previous_item_id: str | None = None) -> None:
        item_id = str(item["id"])
        if item_id not in self._items:
            self.on_item_added(item, previous_item_id, anchored=previous_item_id is not None)
            return
        self._touch(item_id)
        _apply_item_fields(self._items[item_id], item)

    def on_committed(self, item_id: str, previous_item_id: str | None) -> None:
        """`input_audio_buffer.committed`: a user audio item now exists (content may follow)."""
        if item_id in self._items:
            return
        self._seq += 1
        entry = MirrorItem(id=item_id, type="message", role="user", has_audio=True, seq=self._seq)
        self._insert(entry, previous_item_id, anchored=True)

    def on_transcript(self, item_id: str, transcript: str) -> None:
        """Input transcription completed for a user audio item (the history's copy of it)."""
        entry = self._items.get(item_id)
        if entry is not None and transcript != entry.text:
            entry.text = transcript
            self._touch(item_id)

    def on_truncated(self, item_id: str, audio_end_ms: int) -> None:
        entry = self._items.get(item_id)
        if entry is not None:
            entry.truncated_ms = audio_end_ms
            entry.text = ""
            self._touch(item_id)

    def on_deleted(self, item_id: str) -> None:
        if self._items.pop(item_id, None) is not None:
            self._order.remove(item_id)
            self.layout += 1

    def mark_client_created(self, item_id: str) -> None:
        entry = self._items.get(item_id)
        if entry is not None:
            entry.created_by_client = True
            self._touch(item_id)

    def reset(self) -> None:
        """A new provider session starts empty (item ids do not survive a reconnect)."""
        self._items.clear()
        self._order.clear()
        self.layout += 1


# --------------------------------------------------------------------------- the diff


@dataclass(frozen=True, slots=True)
class SyncPlan:
    """Operations that turn the provider sequence into the wanted one.

    Apply `deletes` (any order), then `creates` in order; each create inserts `item_id` after
    `previous_id` (`None`: at the start). `kept` are the ids left untouched.
    """

    deletes: tuple[str, ...]
    creates: tuple[tuple[str, str | None], ...]
    kept: tuple[str, ...]

    @property
    def empty(self) -> bool:
        return not self.deletes and not self.creates


def _heaviest_increasing(values: Sequence[int], weights: Sequence[int]) -> list[int]:
    """Positions (into `values`) of one strictly increasing subsequence of maximal total weight.

    With all weights 1 this is a longest increasing subsequence. A Fenwick tree over the
    values holds, for each prefix of values, the best (weight, end position) so far:
    O(n log n), so a sync of a long call's history stays cheap.
    """
    if not values:
        return []
    size = max(values) + 1
    tree: list[tuple[int, int]] = [(0, -1)] * (size + 1)
    parent: list[int] = [-1] * len(values)
    best: tuple[int, int] = (0, -1)
    for pos, (value, weight) in enumerate(zip(values, weights, strict=True)):
        prefix: tuple[int, int] = (0, -1)
        i = value  # values strictly below `value` live at tree indices 1..value
        while i > 0:
            prefix = max(prefix, tree[i])
            i -= i & -i
        parent[pos] = prefix[1]
        entry = (prefix[0] + weight, pos)
        best = max(best, entry)
        i = value + 1
        while i <= size:
            if entry > tree[i]:
                tree[i] = entry
            i += i & -i
    out: list[int] = []
    pos = best[1]
    while pos >= 0:
        out.append(pos)
        pos = parent[pos]
    out.reverse()
    return out


def plan_sync(
    remote: Sequence[str],
    local: Sequence[str],
    *,
    changed: AbstractSet[str] = frozenset(),
    protected: AbstractSet[str] = frozenset(),
    pinned: AbstractSet[str] = frozenset(),
    anchor: str | None = None,
) -> SyncPlan:
    """Minimal delete/create plan from `remote` (provider ids, in order) to `local`.

    Both sequences hold unique ids. Ids in `changed` exist on both sides with different content
    and are replaced (delete + create). Ids in `protected` (items still being generated) are
    never deleted or re-created, whatever their position. Ids in `pinned` (the provider's own
    audio items: re-creating one could only make it text) are never deleted or re-created
    either, and the plan keeps them in order first: when the two sides order a pinned item and
    an unpinned one differently, the unpinned one moves (a tool output is deleted and created
    after the caller's audio turn, never the other way round).

    `anchor`: the id both sides hold, in place, right before the two sequences (a sync that
    plans only what follows a prefix already equal): the first create goes after it.
    """
    remote_index = {item_id: i for i, item_id in enumerate(remote)}
    candidates = [
        (j, remote_index[item_id])
        for j, item_id in enumerate(local)
        if item_id in remote_index and item_id not in changed
    ]
    # One pinned item outweighs every unpinned one together.
    heavy = len(local) + 1
    weights = [heavy if local[j] in pinned else 1 for j, _ in candidates]
    chain = _heaviest_increasing([r for _, r in candidates], weights)
    kept_local = {local[candidates[p][0]] for p in chain}
    kept_set = kept_local | {i for i in protected | pinned if i in remote_index}
    deletes = tuple(i for i in remote if i not in kept_set)
    creates: list[tuple[str, str | None]] = []
    # Anchor each create on the previous wanted item that is in order: an in-order kept item
    # or an item just created. A protected item left out of order must not be an anchor, or
    # items created after it would land in its (wrong) place.
    previous = anchor
    for item_id in local:
        if item_id not in kept_set:
            creates.append((item_id, previous))
            previous = item_id
        elif item_id in kept_local:
            previous = item_id
    kept = tuple(i for i in remote if i in kept_set)
    return SyncPlan(deletes=deletes, creates=tuple(creates), kept=kept)


def apply_plan(remote: Iterable[str], plan: SyncPlan) -> list[str]:
    """Simulate the provider applying `plan` (used by tests and as executable documentation)."""
    deleted = set(plan.deletes)
    order = [i for i in remote if i not in deleted]
    for item_id, previous in plan.creates:
        order.insert(0 if previous is None else order.index(previous) + 1, item_id)
    return order
