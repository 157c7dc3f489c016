"""A create under a client-chosen id is idempotent (the protocol core, no event loop).

An output whose `conversation.item.create` timed out may have been created all the same (its
ack was lost or late). The shell then asks for the item by id (`retrieve`) before creating it
again; a server that refuses the reused id ("already exists") has the item too. Either way the
create is a success and the mirror holds the item once — a re-sync has nothing to re-create.
"""

from __future__ import annotations

from typing import Any

from vocalis.providers.base import ErrorKind, OpCompleted, OpFailed
from vocalis.providers.openai.formats import audio_format
from vocalis.providers.openai.protocol import OpenAIProtocol, Output
from vocalis.providers.openai.wire_items import provider_item_id

from .openai_script import error, ev

OUTPUT = {"id": "out_call_1", "type": "function_call_output", "call_id": "call_1", "output": "{}"}


def _core() -> OpenAIProtocol:
    return OpenAIProtocol(audio_format=audio_format("pcm16"))


def _feed(core: OpenAIProtocol, *events: dict[str, Any]) -> list[Output]:
    return [out for event in events for out in core.receive(event)]


def test_a_create_refused_as_already_existing_succeeds_and_the_mirror_has_the_item() -> None:
    core = _core()
    op = core.create(dict(OUTPUT), local_id="out_call_1", previous_item_id=None)
    msg = "Error adding item: the item with id 'out_call_1' already exists."
    out = _feed(core, error("item_duplicate_id", msg, op.op_id))
    assert out == [OpCompleted(op.op_id, "out_call_1")]
    assert core.mirror.ids() == ["out_call_1"]
    # Also when the server does not echo our event id: matched by the id in the message.
    other = core.create(dict(OUTPUT, id="out_call_2"), local_id="out_call_2", previous_item_id=None)
    msg2 = "Error adding item: the item with id 'out_call_2' already exists."
    assert _feed(core, error("item_duplicate_id", msg2, None)) == [
        OpCompleted(other.op_id, "out_call_2")
    ]
    assert core.mirror.ids() == ["out_call_1", "out_call_2"]


def test_an_already_existing_item_created_at_the_start_is_mirrored_there() -> None:
    """`previous_item_id="root"` (a history re-sync's first item) means the conversation's
    start, on the wire as in the mirror; it names no item to insert after."""
    core = _core()
    _feed(core, ev("conversation.item.added", item=dict(OUTPUT, id="A"), previous_item_id=None))
    op = core.create(dict(OUTPUT), local_id="out_call_1", previous_item_id="root")
    msg = "Error adding item: the item with id 'out_call_1' already exists."
    assert _feed(core, error("item_duplicate_id", msg, op.op_id)) == [
        OpCompleted(op.op_id, "out_call_1")
    ]
    assert core.mirror.ids() == ["out_call_1", "A"]


def test_retrieve_finds_an_item_whose_create_ack_was_lost() -> None:
    core = _core()
    create = core.create(dict(OUTPUT), local_id="out_call_1", previous_item_id=None)
    core.forget(create.op_id)  # the shell gave up waiting for the ack
    op = core.retrieve("out_call_1")
    assert op.event == {
        "type": "conversation.item.retrieve",
        "event_id": op.op_id,
        "item_id": "out_call_1",
    }
    out = _feed(core, ev("conversation.item.retrieved", item=dict(OUTPUT, status="completed")))
    assert out == [OpCompleted(op.op_id, "out_call_1")]
    assert core.mirror.ids() == ["out_call_1"]
    assert core.mirror.get("out_call_1").created_by_client  # type: ignore[union-attr]


def test_a_caller_id_the_server_cannot_take_maps_to_its_item_on_every_success() -> None:
    """A caller id too long for the API goes out hashed (`provider_item_id`); whichever way
    the create is confirmed, the caller's id then resolves to that item (a re-sync or a
    replay must not take the item for a missing one and create it again)."""
    long_id = "out_" + "c" * 40
    pid = provider_item_id(long_id)
    refused = "Error adding item: the item with id '%s' already exists."
    for confirm in ("added", "already exists", "retrieved"):
        core = _core()
        create = core.create(dict(OUTPUT, id=pid), local_id=long_id, previous_item_id=None)
        if confirm == "added":
            out = _feed(core, ev("conversation.item.added", item=dict(OUTPUT, id=pid)))
        elif confirm == "already exists":
            out = _feed(core, error("item_duplicate_id", refused % pid, create.op_id))
        else:
            core.forget(create.op_id)
            create = core.retrieve(pid, local_id=long_id)
            out = _feed(core, ev("conversation.item.retrieved", item=dict(OUTPUT, id=pid)))
        assert out == [OpCompleted(create.op_id, pid)], confirm
        assert core.resolve_id(long_id) == pid, confirm
        assert core.mirror.get(pid).created_by_client, confirm  # type: ignore[union-attr]


def test_retrieve_of_an_item_the_server_lacks_fails_not_found() -> None:
    core = _core()
    op = core.retrieve("out_call_1")
    msg = "Error retrieving item: the item with id 'out_call_1' does not exist."
    for event_id in (op.op_id, None):  # echoed or not: matched by its code
        if event_id is None:
            op = core.retrieve("out_call_1")
        [failed] = _feed(core, error("item_retrieve_invalid_item_id", msg, event_id))
        assert isinstance(failed, OpFailed) and failed.op_id == op.op_id
        assert failed.error.kind is ErrorKind.NOT_FOUND
    assert core.mirror.ids() == []


def test_a_not_found_without_event_id_fails_the_retrieve_it_names() -> None:
    """Two retrieves in flight (two outputs timed out); the server's error echoes no event id.
    Failing the older one instead would have the shell create an item the server has."""
    core = _core()
    first = core.retrieve("out_call_1")
    second = core.retrieve("out_call_2")
    msg = "Error retrieving item: the item with id 'out_call_2' does not exist."
    [failed] = _feed(core, error("item_retrieve_invalid_item_id", msg, None))
    assert isinstance(failed, OpFailed) and failed.op_id == second.op_id
    found = _feed(core, ev("conversation.item.retrieved", item=dict(OUTPUT, status="completed")))
    assert found == [OpCompleted(first.op_id, "out_call_1")]


def test_a_late_ack_of_an_abandoned_create_completes_no_other_create() -> None:
    """Two outputs in flight; the first's create timed out. Its ack arriving late must not be
    taken for the second's (the FIFO match for servers that ignore client ids)."""
    core = _core()
    first = core.create(dict(OUTPUT), local_id="out_call_1", previous_item_id=None)
    second = core.create(
        dict(OUTPUT, id="out_call_2"), local_id="out_call_2", previous_item_id=None
    )
    core.forget(first.op_id)
    late = ev("conversation.item.added", item=dict(OUTPUT, status="completed"))
    assert _feed(core, late) == []
    assert core.mirror.ids() == ["out_call_1"]  # the mirror still learns it
    added = ev("conversation.item.added", item=dict(OUTPUT, id="out_call_2", status="completed"))
    assert _feed(core, added) == [OpCompleted(second.op_id, "out_call_2")]
