"""History sync never rewrites the provider's audio as text, whatever the order (issue #20).

A caller who speaks while a slow tool runs can make the two sides disagree on order: the
provider commits the caller's audio turn when their speech ends, a tool output lands whenever
the tool finishes. The property: over random interleavings of caller turns, spoken answers,
tool calls and their outputs, and any local order the runtime could hold (audio items in the
provider's relative order, each output after its call), `plan_history_ops`

* never deletes or re-creates an audio item the provider holds (caller speech or the model's
  voice would become text), and
* turns the provider conversation into exactly the local order, by moving text items (tool
  outputs) around the audio.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from vocalis.conversation.items import (
    ConversationItem,
    FunctionCallItem,
    FunctionCallOutputItem,
    MessageItem,
)
from vocalis.providers.openai.formats import audio_format
from vocalis.providers.openai.history import plan_history_ops
from vocalis.providers.openai.protocol import OpenAIProtocol

from .openai_script import ev

Step = str  # "speech" | "say" | "call" | "output"


def _wire(item: ConversationItem) -> dict[str, Any]:
    if isinstance(item, FunctionCallItem):
        return {
            "id": item.id,
            "type": "function_call",
            "status": "completed",
            "call_id": item.call_id,
            "name": item.name,
            "arguments": item.arguments,
        }
    if isinstance(item, FunctionCallOutputItem):
        return {
            "id": item.id,
            "type": "function_call_output",
            "call_id": item.call_id,
            "output": item.output,
        }
    part = "input_audio" if item.role == "user" else "output_audio"
    return {
        "id": item.id,
        "type": "message",
        "role": item.role,
        "status": "completed",
        "content": [{"type": part, "transcript": item.text}],
    }


def provider_conversation(steps: list[Step]) -> tuple[OpenAIProtocol, list[ConversationItem]]:
    """Feed the steps to a protocol core as the server would report them (commit order)."""
    core = OpenAIProtocol(audio_format=audio_format("pcm16"))
    items: list[ConversationItem] = []
    open_calls: list[str] = []
    for n, step in enumerate(steps):
        item: ConversationItem
        if step == "speech":
            item = MessageItem(id=f"U{n}", role="user", text=f"caller {n}")
        elif step == "say":
            item = MessageItem(id=f"A{n}", role="assistant", text=f"agent {n}", played_ms=500.0)
        elif step == "call":
            item = FunctionCallItem(id=f"F{n}", call_id=f"c{n}", name="tool", arguments="{}")
            open_calls.append(item.call_id)
        elif open_calls:
            call_id = open_calls.pop(0)
            item = FunctionCallOutputItem(id=f"O{n}", call_id=call_id, output="ok")
        else:
            continue
        previous = items[-1].id if items else None
        if step == "speech":
            core.receive(
                ev("input_audio_buffer.committed", item_id=item.id, previous_item_id=previous)
            )
        core.receive(ev("conversation.item.added", previous_item_id=previous, item=_wire(item)))
        items.append(item)
    return core, items


def local_order(remote: list[ConversationItem], shuffled: list[int]) -> list[ConversationItem]:
    """A local order the runtime could hold: `shuffled` repaired so that the audio items keep
    their provider order and every output follows its call."""
    order = [remote[i] for i in shuffled]
    audio = iter([i for i in remote if isinstance(i, MessageItem)])
    order = [next(audio) if isinstance(i, MessageItem) else i for i in order]
    for item in [i for i in order if isinstance(i, FunctionCallOutputItem)]:
        call = next(
            i for i in order if isinstance(i, FunctionCallItem) and i.call_id == item.call_id
        )
        if order.index(item) < order.index(call):
            order.remove(item)
            order.insert(order.index(call) + 1, item)
    return order


def apply_ops(remote: list[str], ops: list[Any]) -> tuple[list[str], set[str], set[str]]:
    """The provider applying the ops; returns the new order, deleted ids and created ids."""
    order = list(remote)
    deleted: set[str] = set()
    created: set[str] = set()
    for op in ops:
        event = op.event
        if event["type"] == "conversation.item.delete":
            order.remove(event["item_id"])
            deleted.add(event["item_id"])
        else:
            item_id = event["item"]["id"]
            previous = event.get("previous_item_id")
            order.insert(0 if previous == "root" else order.index(previous) + 1, item_id)
            created.add(item_id)
    return order, deleted, created


STEPS = st.lists(st.sampled_from(["speech", "say", "call", "output"]), max_size=14)


@settings(max_examples=300, deadline=None)
@given(steps=STEPS, data=st.data())
def test_sync_moves_outputs_never_the_provider_audio(steps: list[Step], data: Any) -> None:
    core, remote = provider_conversation(steps)
    shuffled = data.draw(st.permutations(range(len(remote))))
    local = local_order(remote, list(shuffled))

    ops = plan_history_ops(core, local)
    result, deleted, created = apply_ops([i.id for i in remote], ops)

    audio = {i.id for i in remote if isinstance(i, MessageItem)}
    assert not audio & deleted, "an audio item was deleted"
    assert not audio & created, "an audio item was re-created as text"
    assert result == [i.id for i in local]
    moved = deleted | created
    assert all(i.startswith("O") or i.startswith("F") for i in moved)


def test_the_issue_case_moves_the_output_after_the_caller_turn() -> None:
    """Provider: call, output, caller turn; local: call, caller turn, output (reserved at
    speech start). The sync moves the output; the caller's audio stays."""
    core, remote = provider_conversation(["speech", "call", "output", "speech"])
    user1, call, output, user2 = remote
    ops = plan_history_ops(core, [user1, call, user2, output])
    assert [
        (op.event["type"], op.event.get("item_id") or op.event["item"]["id"]) for op in ops
    ] == [
        ("conversation.item.delete", output.id),
        ("conversation.item.create", output.id),
    ]
