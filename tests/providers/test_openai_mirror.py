"""The conversation mirror and the minimal history diff (`plan_sync`), property-tested."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from vocalis.providers.base import ItemAccount
from vocalis.providers.openai.mirror import ConversationMirror, apply_plan, plan_sync

IDS = [f"i{n}" for n in range(10)]
id_lists = st.lists(st.sampled_from(IDS), unique=True, max_size=10)


def lcs_length(a: list[str], b: list[str]) -> int:
    """Textbook O(n·m) DP — independent of the LIS-based implementation under test."""
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            table[i + 1][j + 1] = (
                table[i][j] + 1 if x == y else max(table[i][j + 1], table[i + 1][j])
            )
    return table[-1][-1]


def is_subsequence(sub: list[str] | tuple[str, ...], seq: list[str]) -> bool:
    it = iter(seq)
    return all(x in it for x in sub)


@settings(max_examples=300, deadline=None)
@given(remote=id_lists, local=id_lists)
def test_plan_turns_remote_into_local(remote: list[str], local: list[str]) -> None:
    plan = plan_sync(remote, local)
    assert apply_plan(remote, plan) == local


@settings(max_examples=300, deadline=None)
@given(remote=id_lists, local=id_lists)
def test_plan_is_minimal(remote: list[str], local: list[str]) -> None:
    plan = plan_sync(remote, local)
    common = lcs_length(remote, local)
    assert len(plan.kept) == common
    assert len(plan.deletes) == len(remote) - common
    assert len(plan.creates) == len(local) - common
    assert is_subsequence(plan.kept, remote) and is_subsequence(plan.kept, local)


@settings(max_examples=200, deadline=None)
@given(ids=id_lists, data=st.data())
def test_equal_orders_with_nothing_changed_plan_nothing(
    ids: list[str], data: st.DataObject
) -> None:
    """What `history._ops_for` relies on to skip planning the usual re-sync: whatever is
    protected or pinned, and after any anchor, equal sides with no change need no op."""
    some = st.lists(st.sampled_from(ids), unique=True) if ids else st.just([])
    protected, pinned = set(data.draw(some)), set(data.draw(some))
    plan = plan_sync(ids, list(ids), protected=protected, pinned=pinned, anchor="a0")
    assert plan.deletes == () and plan.creates == ()
    assert list(plan.kept) == ids


@settings(max_examples=200, deadline=None)
@given(remote=id_lists, local=id_lists, data=st.data())
def test_changed_items_are_replaced(
    remote: list[str], local: list[str], data: st.DataObject
) -> None:
    both = sorted(set(remote) & set(local))
    changed = set(data.draw(st.lists(st.sampled_from(both), unique=True) if both else st.just([])))
    plan = plan_sync(remote, local, changed=changed)
    assert apply_plan(remote, plan) == local
    created = {item_id for item_id, _ in plan.creates}
    assert changed <= set(plan.deletes) and changed <= created


@settings(max_examples=200, deadline=None)
@given(remote=id_lists, local=id_lists, data=st.data())
def test_protected_items_are_never_touched(
    remote: list[str], local: list[str], data: st.DataObject
) -> None:
    protected = set(
        data.draw(st.lists(st.sampled_from(remote), unique=True) if remote else st.just([]))
    )
    plan = plan_sync(remote, local, protected=protected)
    created = {item_id for item_id, _ in plan.creates}
    assert not protected & set(plan.deletes)
    assert not protected & created
    result = apply_plan(remote, plan)
    # Everything else is as wanted: the unprotected order equals the wanted order.
    assert [i for i in result if i not in protected] == [i for i in local if i not in protected]


def test_identical_histories_need_nothing() -> None:
    plan = plan_sync(["a", "b", "c"], ["a", "b", "c"])
    assert plan.empty and plan.kept == ("a", "b", "c")


def test_creates_anchor_on_previous_wanted_item() -> None:
    plan = plan_sync(["a", "c"], ["x", "a", "b", "c"])
    assert plan.creates == (("x", None), ("b", "a"))
    assert plan.deletes == ()


# --------------------------------------------------------------------------- the mirror


def item(item_id: str, **fields: object) -> dict[str, object]:
    return {"id": item_id, "type": "message", "role": "user", **fields}


def test_mirror_orders_by_previous_item_id() -> None:
    mirror = ConversationMirror()
    mirror.on_item_added(item("a"), None)
    mirror.on_item_added(item("c"), "a")
    mirror.on_item_added(item("b"), "a")  # inserted between a and c
    mirror.on_item_added(item("r"), None)  # explicit null: at the root
    mirror.on_item_added(item("z"), None, anchored=False)  # no previous given: appended
    mirror.on_item_added(item("q"), "unknown")  # unknown anchor: appended
    assert mirror.ids() == ["r", "a", "b", "c", "z", "q"]
    mirror.on_deleted("b")
    mirror.on_deleted("b")  # idempotent
    assert mirror.ids() == ["r", "a", "c", "z", "q"]


def test_mirror_reads_both_content_spellings_and_truncation() -> None:
    # Audio may arrive before conversation.item.added; the mirror reads the core's account.
    mirror = ConversationMirror({"A": ItemAccount("A", received_ms=120.0)})
    mirror.on_item_added(item("A", role="assistant", status="in_progress", content=[]), None)
    assert mirror.has_audio("A")
    mirror.on_item_done(
        item(
            "A",
            role="assistant",
            status="completed",
            content=[{"type": "output_audio", "transcript": "hi there"}],
        )
    )
    # The model's own audio messages keep no text here (the account and the history have it).
    assert mirror.get("A").text == ""  # type: ignore[union-attr]
    mirror.on_item_added(
        item("B", role="assistant", content=[{"type": "audio", "transcript": "yo"}]), "A"
    )
    mirror.on_item_added(
        item("T", role="assistant", content=[{"type": "text", "text": "typed"}]), "B"
    )
    assert mirror.get("B").has_audio and mirror.get("B").text == ""  # type: ignore[union-attr]
    assert not mirror.get("T").has_audio and mirror.get("T").text == "typed"  # type: ignore[union-attr]
    mirror.on_truncated("A", 80)
    entry = mirror.get("A")
    assert entry is not None and entry.truncated_ms == 80 and entry.text == ""
    # A late `.done` with the full transcript does not resurrect the cut text.
    mirror.on_item_done(
        item("A", role="assistant", content=[{"type": "output_audio", "transcript": "hi there"}])
    )
    assert mirror.get("A").text == ""  # type: ignore[union-attr]
    assert mirror.audio_ms("A") == 120.0 and mirror.audio_ms("nope") == 0.0


def test_mirror_committed_user_items_and_transcripts() -> None:
    mirror = ConversationMirror()
    mirror.on_item_added(item("a"), None)
    mirror.on_committed("u1", "a")
    mirror.on_item_added(item("u1", content=[{"type": "input_audio", "transcript": None}]), "a")
    mirror.on_transcript("u1", "hello")
    entry = mirror.get("u1")
    assert entry is not None and entry.has_audio and entry.text == "hello"
    assert mirror.ids() == ["a", "u1"]
    assert entry.to_conversation_item() is not None
    mirror.reset()
    assert mirror.ids() == [] and not mirror.has_audio("u1")


@settings(max_examples=200, deadline=None)
@given(remote=id_lists, local=id_lists, data=st.data())
def test_pinned_items_stay_and_the_rest_moves_around_them(
    remote: list[str], local: list[str], data: st.DataObject
) -> None:
    both = [i for i in local if i in remote]
    pinned = set(data.draw(st.lists(st.sampled_from(both), unique=True) if both else st.just([])))
    plan = plan_sync(remote, local, pinned=pinned)
    created = {item_id for item_id, _ in plan.creates}
    assert not pinned & set(plan.deletes) and not pinned & created
    in_remote_order = [i for i in remote if i in pinned]
    if [i for i in local if i in pinned] == in_remote_order:
        # The pinned items agree on their order: everything else moves around them.
        assert apply_plan(remote, plan) == local
