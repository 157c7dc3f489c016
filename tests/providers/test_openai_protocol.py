"""The sans-I/O protocol core fed with the event sequences of the protocol doc §4.

Plain synchronous tests: the core needs no event loop. `Streams` applies the core's value
events to simple records the way the asyncio shell's router does (messages in order, closed
streams, one done), so the assertions read like the runtime's view.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np
import pytest

from vocalis.providers.base import (
    ErrorKind,
    GenerationDone,
    InputAudioCommitted,
    InputSpeechStarted,
    InputSpeechStopped,
    InputTranscription,
    ItemAccount,
    Modality,
    OpCompleted,
    OpFailed,
    ProviderError,
    ProviderLimits,
    ToolCall,
    ToolCallDelta,
)
from vocalis.providers.core_events import (
    AudioDelta,
    AudioEnded,
    ItemAnnounced,
    MessageEnded,
    MessageStarted,
    ResponseEnded,
    ResponseStarted,
    TextDelta,
    TextEnded,
    ToolCallReady,
    ToolCallStreaming,
)
from vocalis.providers.openai.formats import audio_format
from vocalis.providers.openai.ops import ClientOp, Send, Skip
from vocalis.providers.openai.protocol import OpenAIProtocol, Output

from .openai_script import (
    audio_b64,
    error,
    ev,
    function_call,
    message_deltas,
    message_end,
    message_start,
    response_created,
    response_done,
    user_turn,
)

T = TypeVar("T")


class Stream(list[T], Generic[T]):
    """A recorded stream: its items and whether it was closed."""

    closed: bool = False


@dataclass
class Done:
    value: GenerationDone | None = None

    def done(self) -> bool:
        return self.value is not None

    def result(self) -> GenerationDone:
        assert self.value is not None, "the response has not ended"
        return self.value


@dataclass
class Msg:
    item_id: str
    output_index: int
    modalities: tuple[Modality, ...]
    account: ItemAccount
    audio: Stream[np.ndarray] = field(default_factory=Stream)
    text: Stream[str] = field(default_factory=Stream)

    @property
    def status(self) -> str | None:
        return self.account.status

    @property
    def audio_received_ms(self) -> float:
        return self.account.received_ms


@dataclass
class Resp:
    response_id: str
    request_id: str | None
    messages: Stream[Msg] = field(default_factory=Stream)
    tool_calls: Stream[ToolCall] = field(default_factory=Stream)
    tool_call_deltas: Stream[ToolCallDelta] = field(default_factory=Stream)
    announced_item_ids: list[str] = field(default_factory=list)
    done: Done = field(default_factory=Done)


class Streams:
    """The router's job, synchronously: value events -> per-response records."""

    def __init__(self) -> None:
        self.responses: dict[str, Resp] = {}
        self.messages: dict[str, Msg] = {}

    def active(self) -> list[Resp]:
        return [r for r in self.responses.values() if not r.done.done()]

    def apply(self, outputs: list[Output]) -> None:
        for o in outputs:
            self._apply(o)

    def _apply(self, o: Output) -> None:
        if isinstance(o, ResponseStarted):
            self.responses[o.response_id] = Resp(o.response_id, o.request_id)
        elif isinstance(o, MessageStarted):
            msg = Msg(o.item_id, o.output_index, o.modalities, o.account)
            msg.audio.closed = "audio" not in o.modalities
            self.messages[o.item_id] = msg
            resp = self.responses[o.response_id]
            resp.messages.append(msg)
            resp.announced_item_ids.append(o.item_id)
        elif isinstance(o, ItemAnnounced):
            self.responses[o.response_id].announced_item_ids.append(o.item_id)
        elif isinstance(o, AudioDelta):
            msg = self.messages[o.item_id]
            assert not msg.audio.closed, "audio after its end"
            msg.audio.append(o.samples)
        elif isinstance(o, AudioEnded):
            msg = self.messages[o.item_id]
            msg.audio.closed = True
            if o.text_only:
                msg.modalities = ("text",)
        elif isinstance(o, TextDelta):
            msg = self.messages[o.item_id]
            assert not msg.text.closed, "text after its end"
            msg.text.append(o.delta)
        elif isinstance(o, TextEnded):
            self.messages[o.item_id].text.closed = True
        elif isinstance(o, MessageEnded):
            msg = self.messages[o.item_id]
            msg.audio.closed = msg.text.closed = True
            assert (o.status, o.received_ms) == (msg.account.status, msg.account.received_ms)
        elif isinstance(o, ToolCallStreaming):
            self.responses[o.response_id].tool_call_deltas.append(o.delta)
        elif isinstance(o, ToolCallReady):
            self.responses[o.call.response_id].tool_calls.append(o.call)
        elif isinstance(o, ResponseEnded):
            resp = self.responses[o.done.response_id]
            assert not resp.done.done(), "a response ended twice"
            for msg in resp.messages:
                assert msg.status is not None, "a message outlived its response"
            resp.messages.closed = resp.tool_calls.closed = resp.tool_call_deltas.closed = True
            resp.done.value = o.done


_STREAMS: dict[int, Streams] = {}


class Outs(list[Output]):
    streams: Streams


def make_core(**kwargs: Any) -> OpenAIProtocol:
    core = OpenAIProtocol(audio_format=audio_format("pcm16"), **kwargs)
    _STREAMS[id(core)] = Streams()
    return core


def streams(core: OpenAIProtocol) -> Streams:
    return _STREAMS[id(core)]


def feed(core: OpenAIProtocol, events: Sequence[object]) -> Outs:
    out = Outs()
    for event in events:
        out.extend(core.receive(event))
    out.streams = streams(core)
    out.streams.apply(out)
    return out


def lose(core: OpenAIProtocol, reason: str) -> list[Output]:
    out = core.connection_lost(reason)
    streams(core).apply(out)
    return out


def drain(stream: list[T]) -> list[T]:
    return list(stream)


def only_generation(out: Outs) -> Resp:
    started = [o for o in out if isinstance(o, ResponseStarted)]
    assert len(started) == 1
    return out.streams.responses[started[0].response_id]


def audio_of(message: Msg) -> np.ndarray:
    return np.concatenate(message.audio)


# --------------------------------------------------------------------------- (a) single message


def test_single_message_audio_response() -> None:
    core = make_core()
    events = user_turn("U1")
    events += [response_created("R1")]
    events += message_start("R1", "A1", 0, "U1")
    events += message_deltas("R1", "A1", 0, ["Hello", " there"], chunk_ms=100)
    events += message_end("R1", "A1", 0, "Hello there", "U1")
    events += [response_done("R1", [{"id": "A1", "type": "message"}])]
    out = feed(core, events)

    kinds = [type(o) for o in out]
    assert kinds[:3] == [InputSpeechStarted, InputSpeechStopped, InputAudioCommitted]
    generation = only_generation(out)
    assert generation.request_id is None
    messages = drain(generation.messages)
    assert generation.messages.closed
    assert [m.item_id for m in messages] == ["A1"]
    message = messages[0]
    assert message.modalities == ("audio", "text")
    assert len(audio_of(message)) == 2 * 100 * 24
    assert "".join(drain(message.text)) == "Hello there"
    assert message.audio.closed and message.text.closed
    assert message.status == "completed"
    assert message.audio_received_ms == pytest.approx(200.0)
    done = generation.done.result()
    assert done.status == "completed"
    assert done.output_item_ids == ("A1",)
    assert core.mirror.ids() == ["U1", "A1"]
    assert core.mirror.audio_ms("A1") == pytest.approx(200.0)
    # One copy of the model's words: the item's account has them, the mirror keeps none.
    assert message.account.text == "Hello there"
    assert core.mirror.get("A1").text == ""  # type: ignore[union-attr]
    assert core.idle


def test_text_only_response_closes_audio_and_streams_text() -> None:
    core = make_core()
    events = [response_created("R1", modalities=["text"])]
    events += message_start("R1", "A1", 0, None, part="text")
    common = {"response_id": "R1", "item_id": "A1", "output_index": 0, "content_index": 0}
    events += [
        ev("response.output_text.delta", delta="Hi ", **common),
        ev("response.output_text.delta", delta="you", **common),
        ev("response.output_text.done", text="Hi you!", **common),
        response_done("R1", []),
    ]
    generation = only_generation(feed(core, events))
    (message,) = drain(generation.messages)
    assert message.modalities == ("text",)
    assert message.audio.closed and drain(message.audio) == []
    # The `.done` text carries a tail the deltas missed: it is delivered, not lost.
    assert "".join(drain(message.text)) == "Hi you!"


# --------------------------------------------------------------------------- (b) preambles


def preamble_events(overlapping: bool) -> list[dict[str, Any]]:
    a_start = message_start("R1", "A", 0, "U1")
    a_deltas = message_deltas("R1", "A", 0, ["Let", " me", " check."], chunk_ms=40, value=1)
    a_end = message_end("R1", "A", 0, "Let me check.", "U1")
    b_start = message_start("R1", "B", 1, "A")
    b_first = message_deltas("R1", "B", 1, ["It is"], chunk_ms=60, value=2)
    b_rest = message_deltas("R1", "B", 1, [" sunny."], chunk_ms=60, value=2)
    b_end = message_end("R1", "B", 1, "It is sunny.", "A")
    events = [response_created("R1"), *a_start, *a_deltas]
    if overlapping:
        # B's audio starts before any of A's terminal events (what Pipecat observed).
        events += b_start + b_first + a_end + b_rest + b_end
    else:
        events += a_end + b_start + b_first + b_rest + b_end
    events.append(response_done("R1", [{"id": "A"}, {"id": "B"}]))
    return events


@pytest.mark.parametrize("overlapping", [True, False])
def test_preamble_and_answer_are_separate_messages(overlapping: bool) -> None:
    core = make_core()
    generation = only_generation(feed(core, preamble_events(overlapping)))
    messages = drain(generation.messages)
    assert [(m.item_id, m.output_index) for m in messages] == [("A", 0), ("B", 1)]
    a, b = messages
    a_audio, b_audio = audio_of(a), audio_of(b)
    assert len(a_audio) == 3 * 40 * 24 and set(a_audio.tolist()) == {1}
    assert len(b_audio) == 2 * 60 * 24 and set(b_audio.tolist()) == {2}
    assert "".join(drain(a.text)) == "Let me check."
    assert "".join(drain(b.text)) == "It is sunny."
    assert a.status == b.status == "completed"
    assert generation.done.result().output_item_ids == ("A", "B")
    assert core.mirror.audio_ms("A") == pytest.approx(120.0)
    assert core.mirror.audio_ms("B") == pytest.approx(120.0)


def test_a_closes_at_its_own_done_while_b_is_still_streaming() -> None:
    core = make_core()
    events = preamble_events(overlapping=True)
    # Stop right after A's terminal events: A is closed, B still open.
    cut = next(
        i
        for i, e in enumerate(events)
        if e["type"] == "conversation.item.done" and e["item"]["id"] == "A"
    )
    generation = only_generation(feed(core, events[: cut + 1]))
    a, b = drain(generation.messages)
    assert a.audio.closed and a.text.closed and a.status == "completed"
    assert not b.audio.closed and b.status is None
    assert not generation.done.done()


def test_preamble_then_function_call_streams_arguments() -> None:
    core = make_core()
    events = [response_created("R1")]
    events += message_start("R1", "A", 0, "U1")
    events += message_deltas("R1", "A", 0, ["One moment."], chunk_ms=50)
    events += message_end("R1", "A", 0, "One moment.", "U1")
    events += function_call("R1", "F", 1, "call_1", "get_weather", ['{"city": ', '"Paris"}'])
    events += [
        response_done(
            "R1",
            [
                {"id": "A", "type": "message"},
                {
                    "id": "F",
                    "type": "function_call",
                    "status": "completed",
                    "call_id": "call_1",
                    "name": "get_weather",
                    "arguments": '{"city": "Paris"}',
                },
            ],
        )
    ]
    generation = only_generation(feed(core, events))
    assert [m.item_id for m in drain(generation.messages)] == ["A"]
    deltas = drain(generation.tool_call_deltas)
    assert [d.delta for d in deltas] == ['{"city": ', '"Paris"}']
    assert {d.call_id for d in deltas} == {"call_1"}
    calls = drain(generation.tool_calls)
    assert len(calls) == 1  # arguments.done, output_item.done and response.done: one call
    call = calls[0]
    assert (call.call_id, call.name, call.arguments, call.item_id, call.response_id) == (
        "call_1",
        "get_weather",
        '{"city": "Paris"}',
        "F",
        "R1",
    )
    assert generation.tool_calls.closed and generation.tool_call_deltas.closed
    assert generation.done.result().output_item_ids == ("A", "F")


# --------------------------------------------------------------------------- (c) tool output


def test_tool_output_then_requested_response_is_correlated() -> None:
    core = make_core()
    feed(core, [response_created("R1")])
    feed(core, function_call("R1", "F", 0, "call_1", "lookup", ["{}"]))
    feed(core, [response_done("R1", [{"id": "F"}])])

    create = core.create(
        {"id": "out_1", "type": "function_call_output", "call_id": "call_1", "output": "42"},
        local_id="out_1",
        previous_item_id=None,
    )
    assert create.event["type"] == "conversation.item.create"
    reply = core.response_create({"instructions": "answer"})
    assert reply.event["response"]["metadata"] == {"client_event_id": reply.op_id}
    assert not core.idle  # a requested response counts as activity

    item = {"id": "out_1", "type": "function_call_output", "call_id": "call_1", "output": "42"}
    out = feed(
        core,
        [
            ev("conversation.item.added", previous_item_id="F", item=item),
            ev("conversation.item.done", previous_item_id="F", item=item),
            response_created("R2", metadata={"client_event_id": reply.op_id}),
        ],
    )
    results = [o for o in out if isinstance(o, OpCompleted)]
    assert results[0] == OpCompleted(create.op_id, "out_1")
    # The request completes with its response's id, right after the response started.
    assert results[1] == OpCompleted(reply.op_id, "R2")
    assert ResponseStarted("R2", reply.op_id) in out
    assert core.mirror.ids() == ["F", "out_1"]
    assert core.mirror.get("out_1").created_by_client  # type: ignore[union-attr]


def test_create_with_ignored_client_id_is_matched_and_aliased() -> None:
    core = make_core()
    op = core.create(
        {"id": "local_1", "type": "message", "role": "user", "content": []},
        local_id="local_1",
        previous_item_id=None,
    )
    item = {"id": "item_server", "type": "message", "role": "user", "content": []}
    out = feed(core, [ev("conversation.item.added", previous_item_id=None, item=item)])
    assert out == [OpCompleted(op.op_id, "item_server")]
    assert core.resolve_id("local_1") == "item_server"


def test_active_response_error_fails_the_request_fast() -> None:
    core = make_core()
    op = core.response_create()
    msg = "Conversation already has an active response in progress: resp_1."
    out = feed(core, [error("conversation_already_has_active_response", msg, op.op_id)])
    assert len(out) == 1 and isinstance(out[0], OpFailed)
    assert out[0].op_id == op.op_id and out[0].error.kind is ErrorKind.BUSY
    assert out[0].error.code == "conversation_already_has_active_response"
    # Also when the server does not echo the event id: correlated by code.
    op2 = core.response_create()
    out = feed(core, [error("conversation_already_has_active_response", msg, None)])
    assert isinstance(out[0], OpFailed) and out[0].op_id == op2.op_id
    assert core.idle


# --------------------------------------------------------------------------- (d) barge-in


def test_server_vad_barge_in_cancels_and_truncate_is_exact() -> None:
    core = make_core()
    events = [*user_turn("U1"), response_created("R1")]
    events += message_start("R1", "A", 0, "U1")
    events += message_deltas("R1", "A", 0, ["Once", " upon"], chunk_ms=250)
    events += [ev("input_audio_buffer.speech_started", audio_start_ms=5000, item_id="U2")]
    events += message_end("R1", "A", 0, "Once upon", "U1", status="incomplete")
    events += [response_done("R1", [{"id": "A"}], status="cancelled", reason="turn_detected")]
    out = feed(core, events)
    generation = only_generation(out)
    assert any(isinstance(o, InputSpeechStarted) and o.item_id == "U2" for o in out)
    (message,) = drain(generation.messages)
    assert message.status == "cancelled"
    done = generation.done.result()
    assert (done.status, done.reason) == ("cancelled", "turn_detected")

    # The user heard 312.7 ms of the 500 ms received: truncate at 312 (rounded down).
    op = core.truncate("A", 312.7)
    assert isinstance(op, ClientOp) and op.kind == "truncate"
    assert op.event["audio_end_ms"] == 312 and op.event["content_index"] == 0
    # The core decides nothing about the cut (the ledger clamped it to the account's 500 ms
    # received): what it is given goes on the wire.
    assert message.account.received_ms == pytest.approx(500.0)
    tail = core.truncate("A", 500)
    assert isinstance(tail, ClientOp) and tail.event["audio_end_ms"] == 500
    out = feed(
        core, [ev("conversation.item.truncated", item_id="A", content_index=0, audio_end_ms=312)]
    )
    assert out == [OpCompleted(op.op_id, 312)]
    assert core.mirror.get("A").truncated_ms == 312  # type: ignore[union-attr]
    assert core.mirror.get("A").text == ""  # type: ignore[union-attr]


def test_truncate_sends_exactly_the_given_cut() -> None:
    core = make_core()
    feed(core, [response_created("R1"), *message_start("R1", "A", 0, None)])
    feed(core, message_deltas("R1", "A", 0, ["x"], chunk_ms=80))
    op = core.truncate("A", 1000.9)  # past the 80 ms received: the ledger never asks this
    assert isinstance(op, ClientOp) and op.kind == "truncate"
    assert op.event["audio_end_ms"] == 1000  # whole ms on the wire, nothing else changed


def test_edits_of_items_the_provider_does_not_hold_are_skipped() -> None:
    core = make_core()
    assert isinstance(core.truncate("nope", 500), Skip)
    assert isinstance(core.delete("nope"), Skip)
    created = core.create(
        {"id": "T", "type": "message", "role": "assistant", "content": []},
        local_id="T",
        previous_item_id=None,
    )
    item = {"id": "T", "type": "message", "role": "assistant", "status": "completed"}
    assert feed(core, [ev("conversation.item.added", item=item)]) == [
        OpCompleted(created.op_id, "T")
    ]
    assert isinstance(core.truncate("T", 100), Skip)  # a text item this client created


def test_truncate_past_the_servers_length_is_retried_at_that_length() -> None:
    """P5/P6: the server's audio accounting is coarser than ours; its error names its length."""
    core = make_core()
    feed(core, [response_created("R1"), *message_start("R1", "A", 0, None)])
    feed(core, message_deltas("R1", "A", 0, ["x"], chunk_ms=2535))
    op = core.truncate("A", 2500)
    assert isinstance(op, ClientOp) and op.event["audio_end_ms"] == 2500  # exact first
    msg = "Audio content of 2450ms is already shorter than 2500ms"
    out = feed(core, [error("invalid_value", msg, None)])
    reported, retry = out
    assert isinstance(reported, ProviderError) and reported.operation == "truncate"
    assert not reported.fatal and reported.item_id == "A"
    assert isinstance(retry, Send)
    assert retry.event == {
        "type": "conversation.item.truncate",
        "item_id": "A",
        "content_index": 0,
        "audio_end_ms": 2450,
        "event_id": op.op_id,
    }
    # The retried cut completes the original operation.
    out = feed(
        core, [ev("conversation.item.truncated", item_id="A", content_index=0, audio_end_ms=2450)]
    )
    assert out == [OpCompleted(op.op_id, 2450)]


def test_truncate_rejected_twice_is_reported_on_its_op() -> None:
    core = make_core()
    feed(core, [response_created("R1"), *message_start("R1", "A", 0, None)])
    feed(core, message_deltas("R1", "A", 0, ["x"], chunk_ms=2535))
    op = core.truncate("A", 2500)
    assert isinstance(op, ClientOp)
    first = "Audio content of 2450ms is already shorter than 2500ms"
    feed(core, [error("invalid_value", first, None)])
    second = "Audio content of 2400ms is already shorter than 2450ms"
    out = feed(core, [error("invalid_value", second, None)])
    assert len(out) == 1 and isinstance(out[0], OpFailed) and out[0].op_id == op.op_id
    assert out[0].error.operation == "truncate"
    assert out[0].error.item_id == "A" and not out[0].error.fatal


def test_other_truncate_rejections_are_reported_on_their_op() -> None:
    core = make_core()
    feed(core, [response_created("R1"), *message_start("R1", "A", 0, None)])
    feed(core, message_deltas("R1", "A", 0, ["x"], chunk_ms=500))
    op = core.truncate("A", 300)
    assert isinstance(op, ClientOp)
    out = feed(core, [error(None, "Only model output audio messages can be truncated", None)])
    assert len(out) == 1 and isinstance(out[0], OpFailed) and out[0].op_id == op.op_id
    assert out[0].error.operation == "truncate"


def test_delete_of_already_deleted_item_is_success() -> None:
    core = make_core()
    feed(core, [response_created("R1"), *message_start("R1", "A", 0, None)])
    op = core.delete("A")
    assert isinstance(op, ClientOp)
    msg = "Error deleting item: the item with id 'A' does not exist."
    out = feed(core, [error("item_delete_invalid_item_id", msg, None)])
    assert out == [OpCompleted(op.op_id, None)]
    assert "A" not in core.mirror


# --------------------------------------------------------------------------- (e) client cancel


def test_client_cancel_ends_generation_cancelled() -> None:
    core = make_core()
    feed(core, [response_created("R1"), *message_start("R1", "A", 0, None)])
    generation = streams(core).active()[0]
    cancel = core.response_cancel("R1")
    assert cancel["type"] == "response.cancel" and cancel["response_id"] == "R1"
    out = feed(
        core,
        [
            *message_end("R1", "A", 0, "", None, status="incomplete"),
            response_done("R1", [{"id": "A"}], status="cancelled", reason="client_cancelled"),
        ],
    )
    assert not [o for o in out if isinstance(o, ProviderError | OpFailed | Send)]
    (message,) = drain(generation.messages)
    assert message.status == "cancelled"
    assert generation.done.result().reason == "client_cancelled"
    # Nothing active: the server's "not active" error is swallowed.
    assert (
        feed(
            core,
            [error("response_cancel_not_active", "Cancellation failed: no active response found")],
        )
        == []
    )


def test_cancel_before_created_cancels_the_late_response() -> None:
    core = make_core()
    reply = core.response_create()
    core.response_cancel()
    out = feed(core, [response_created("R9", metadata={"client_event_id": reply.op_id})])
    sends = [o for o in out if isinstance(o, Send)]
    assert len(sends) == 1 and sends[0].event["response_id"] == "R9"
    assert any(isinstance(o, OpCompleted) and o.op_id == reply.op_id for o in out)


def test_timed_out_request_is_cancelled_when_it_arrives() -> None:
    core = make_core()
    reply = core.response_create()
    core.forget(reply.op_id)  # the shell gave up waiting (timeout)
    assert core.idle
    out = feed(core, [response_created("R9", metadata={"client_event_id": reply.op_id})])
    assert [type(o) for o in out] == [ResponseStarted, Send]


# --------------------------------------------------------------------------- robustness


def test_response_done_without_created_is_tolerated() -> None:
    core = make_core()
    assert feed(core, [response_done("R404", [], status="cancelled", reason="turn_detected")]) == []


def test_events_before_response_created_start_it_implicitly() -> None:
    core = make_core()
    events = message_start("R1", "A", 0, None) + message_deltas("R1", "A", 0, ["hi"], 20)
    events += [*message_end("R1", "A", 0, "hi", None), response_done("R1", [{"id": "A"}])]
    generation = only_generation(feed(core, events))
    assert [m.item_id for m in drain(generation.messages)] == ["A"]
    assert generation.done.result().status == "completed"


def test_beta_event_names_and_both_part_spellings() -> None:
    core = make_core()
    common = {"response_id": "R1", "item_id": "A", "output_index": 0, "content_index": 0}
    item = {"id": "A", "type": "message", "role": "assistant", "status": "completed"}
    events = [response_created("R1"), *message_start("R1", "A", 0, None, part="output_audio")]
    events += [
        ev("response.audio.delta", delta=audio_b64(10), **common),
        ev("response.audio_transcript.delta", delta="ok", **common),
        ev(
            "response.output_item.done",
            response_id="R1",
            output_index=0,
            item=dict(item, content=[{"type": "audio", "transcript": "ok"}]),
        ),
        ev(
            "conversation.item.done",
            item=dict(item, content=[{"type": "audio", "transcript": "ok"}]),
        ),
        response_done("R1", [item]),
    ]
    generation = only_generation(feed(core, events))
    (message,) = drain(generation.messages)
    assert message.modalities == ("audio", "text")
    assert len(audio_of(message)) == 240
    assert drain(message.text) == ["ok"]
    assert core.mirror.get("A").has_audio  # type: ignore[union-attr]


def test_malformed_and_unknown_events_warn_rate_limited_without_payload(
    caplog: pytest.LogCaptureFixture,
) -> None:
    core = make_core()
    feed(core, [response_created("R1"), *message_start("R1", "A", 0, None)])
    secret_payload = "QUJD" * 50 + "!!!"  # invalid base64, must not be logged
    common = {"response_id": "R1", "item_id": "A", "output_index": 0, "content_index": 0}
    with caplog.at_level(logging.WARNING):
        for _ in range(20):
            assert (
                feed(core, [ev("response.output_audio.delta", delta=secret_payload, **common)])
                == []
            )
        for _ in range(20):
            assert feed(core, [ev("response.brand_new_thing", x=1)]) == []
        assert feed(core, [{"no": "type"}, ["not", "a", "dict"], ev("response.done")]) == []
    texts = [r.getMessage() for r in caplog.records]
    assert 1 <= sum("response.output_audio.delta" in t for t in texts) <= 3
    assert 1 <= sum("response.brand_new_thing" in t for t in texts) <= 3
    assert not any("QUJD" in t for t in texts)
    # The session still works afterwards.
    feed(core, message_deltas("R1", "A", 0, ["fine"], chunk_ms=10))
    assert core.mirror.audio_ms("A") == pytest.approx(10.0)


def test_connection_lost_ends_everything_exactly_once() -> None:
    core = make_core()
    feed(core, [response_created("R1"), *message_start("R1", "A", 0, None)])
    feed(core, message_deltas("R1", "A", 0, ["partial"], chunk_ms=30))
    feed(core, function_call("R1", "F", 1, "c1", "f", ["{"])[:3])
    generation = streams(core).active()[0]
    truncate = core.truncate("A", 10)
    assert isinstance(truncate, ClientOp)
    out = lose(core, "dropped")
    failed = [o for o in out if isinstance(o, OpFailed)]
    assert [o.op_id for o in failed] == [truncate.op_id]
    assert all(o.error.kind is ErrorKind.DISCONNECTED for o in failed)
    (message,) = drain(generation.messages)
    assert message.status == "disconnected"
    assert message.audio.closed and message.text.closed
    assert generation.tool_calls.closed and generation.messages.closed
    assert generation.done.result().status == "disconnected"
    # A later disconnect or stray done does not touch it again.
    assert lose(core, "again") == []
    assert feed(core, [response_done("R1", [])]) == []
    assert generation.done.result().status == "disconnected"
    # The mirror survives until the next connection opens (replay reads it).
    assert "A" in core.mirror
    core.connection_opened()
    assert len(core.mirror) == 0


def test_fatal_error_is_flagged() -> None:
    core = make_core()
    out = feed(core, [error("invalid_api_key", "Incorrect API key provided.")])
    assert len(out) == 1 and isinstance(out[0], ProviderError) and out[0].fatal


def test_failed_response_reports_error() -> None:
    core = make_core()
    feed(core, [response_created("R1")])
    done = ev(
        "response.done",
        response={
            "id": "R1",
            "status": "failed",
            "status_details": {
                "type": "failed",
                "error": {"type": "rate_limit_exceeded", "code": "inference_rate_limit_exceeded"},
            },
            "output": [],
        },
    )
    out = feed(core, [done])
    assert [type(o) for o in out] == [ResponseEnded, ProviderError]
    reported = out[1]
    assert isinstance(reported, ProviderError) and reported.kind is ErrorKind.RATE_LIMITED
    assert reported.code == "inference_rate_limit_exceeded" and not reported.fatal


def test_input_transcription_accumulates_and_updates_mirror() -> None:
    core = make_core()
    feed(core, user_turn("U1"))
    base = {"item_id": "U1", "content_index": 0}
    out = feed(
        core,
        [
            ev("conversation.item.input_audio_transcription.delta", delta="what's ", **base),
            ev("conversation.item.input_audio_transcription.delta", delta="up", **base),
            ev(
                "conversation.item.input_audio_transcription.completed",
                transcript="what's up?",
                **base,
            ),
        ],
    )
    assert out == [
        InputTranscription("U1", "what's ", final=False),
        InputTranscription("U1", "what's up", final=False),
        InputTranscription("U1", "what's up?", final=True),
    ]
    assert core.mirror.get("U1").text == "what's up?"  # type: ignore[union-attr]


def test_commit_empty_is_benign_only_with_server_vad() -> None:
    msg = "Error committing input audio buffer: buffer too small."
    core = make_core(server_vad=True)
    op = core.commit()
    assert feed(core, [error("input_audio_buffer_commit_empty", msg)]) == [
        OpCompleted(op.op_id, None)
    ]
    core = make_core(server_vad=False)
    op = core.commit()
    (result,) = feed(core, [error("input_audio_buffer_commit_empty", msg)])
    assert isinstance(result, OpFailed) and result.error.kind is ErrorKind.INVALID


def test_response_items_never_complete_a_pending_create() -> None:
    core = make_core()
    op = core.create(
        {"id": "mine", "type": "message", "role": "assistant", "content": []},
        local_id="mine",
        previous_item_id=None,
    )
    # A response's item shows up first (conversation.item.added before output_item.added).
    item = {
        "id": "A",
        "type": "message",
        "role": "assistant",
        "status": "in_progress",
        "content": [],
    }
    assert feed(core, [ev("conversation.item.added", item=item)]) == []
    assert op.op_id in core.pending_op_ids()
    user = {"id": "X", "type": "message", "role": "user", "status": "completed", "content": []}
    assert feed(core, [ev("conversation.item.added", item=user)]) == []  # other role
    mine = {"id": "srv_1", "type": "message", "role": "assistant", "status": "completed"}
    assert feed(core, [ev("conversation.item.added", item=mine)]) == [
        OpCompleted(op.op_id, "srv_1")
    ]


# --------------------------------------------------------------------------- sans-I/O proof


def test_full_multi_message_response_with_barge_in_outside_any_event_loop() -> None:
    """Preamble + answer + tool call, the caller barges in during the answer: all of it runs
    with no event loop (the core holds no future, channel or clock)."""
    with pytest.raises(RuntimeError):
        import asyncio

        asyncio.get_running_loop()  # proves there is none here
    core = make_core()
    events = [*user_turn("U1"), response_created("R1")]
    events += message_start("R1", "A", 0, "U1")
    events += message_deltas("R1", "A", 0, ["Let me", " check."], chunk_ms=100, value=1)
    events += message_end("R1", "A", 0, "Let me check.", "U1")
    events += message_start("R1", "B", 1, "A")
    events += message_deltas("R1", "B", 1, ["It is", " sunny", " and"], chunk_ms=200, value=2)
    events += [ev("input_audio_buffer.speech_started", audio_start_ms=4000, item_id="U2")]
    events += message_end("R1", "B", 1, "It is sunny and", "A", status="incomplete")
    events += function_call("R1", "F", 2, "call_1", "get_weather", ['{"city":"Paris"}'])
    events += [
        response_done(
            "R1",
            [{"id": "A"}, {"id": "B"}, {"id": "F"}],
            status="cancelled",
            reason="turn_detected",
        )
    ]
    out = feed(core, events)
    response = only_generation(out)
    a, b = response.messages
    # One account per item, final in MessageEnded: what arrived, counted once.
    ended = {o.item_id: o for o in out if isinstance(o, MessageEnded)}
    assert ended["A"] == MessageEnded("A", "completed", ended["A"].received_ms, "Let me check.")
    assert ended["B"] == MessageEnded("B", "cancelled", ended["B"].received_ms, "It is sunny and")
    assert (ended["A"].received_ms, ended["B"].received_ms) == pytest.approx((200.0, 600.0))
    assert (a.account.received_ms, b.account.received_ms) == (ended["A"].received_ms, 600.0)
    assert core.mirror.audio_ms("B") == b.account.received_ms  # the mirror reads the account
    assert len(audio_of(b)) == 3 * 200 * 24 and b.audio.closed and b.text.closed
    assert [c.call_id for c in response.tool_calls] == ["call_1"]
    done = response.done.result()
    assert (done.status, done.reason, done.output_item_ids) == (
        "cancelled",
        "turn_detected",
        ("A", "B", "F"),
    )
    # Order on the stream: every message ends before its response does.
    kinds = [type(o) for o in out]
    assert kinds.index(ResponseEnded) > max(i for i, k in enumerate(kinds) if k is MessageEnded)
    assert any(isinstance(o, InputSpeechStarted) and o.item_id == "U2" for o in out)
    # The ledger's cut goes out exactly as given.
    cut = core.truncate("B", 312.9)
    assert isinstance(cut, ClientOp) and cut.event["audio_end_ms"] == 312


def test_core_modules_import_no_asyncio() -> None:
    import ast
    import importlib.util

    for name in ("protocol", "ops", "assembly", "inputs", "wire", "errors", "mirror"):
        spec = importlib.util.find_spec(f"vocalis.providers.openai.{name}")
        assert spec is not None and spec.origin is not None
        with open(spec.origin, encoding="utf-8") as source:
            tree = ast.parse(source.read())
        imported = {
            alias.name.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        } | {
            (node.module or "").split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom)
        }
        assert "asyncio" not in imported, name


# --------------------------------------------------------------------------- bounds (#14)


def test_caller_transcript_deltas_are_not_recopied_past_the_partial_bound() -> None:
    limits = ProviderLimits(partial_transcript_chars=20, max_item_text_chars=50)
    core = make_core(limits=limits)
    feed(core, user_turn("U1"))
    base = {"item_id": "U1", "content_index": 0}
    deltas = [ev("conversation.item.input_audio_transcription.delta", delta="abcd ", **base)] * 30
    out = feed(core, deltas)
    partials = [o for o in out if isinstance(o, InputTranscription)]
    # Cumulative partials only while the text is short: 4 events (5..20 chars), then none.
    assert [len(p.text) for p in partials] == [5, 10, 15, 20]
    failed = feed(
        core, [ev("conversation.item.input_audio_transcription.failed", error={}, **base)]
    )
    (final,) = failed
    assert isinstance(final, InputTranscription) and final.final
    assert len(final.text) == 50  # bounded: the rest was dropped (and logged)


def test_agent_text_per_item_is_bounded() -> None:
    core = make_core(limits=ProviderLimits(max_item_text_chars=12))
    feed(core, [response_created("R1"), *message_start("R1", "A", 0, None)])
    out = feed(core, message_deltas("R1", "A", 0, ["hello ", "world ", "and more"], chunk_ms=10))
    texts = [o.delta for o in out if isinstance(o, TextDelta)]
    assert "".join(texts) == "hello world "
    (message,) = streams(core).responses["R1"].messages
    assert message.account.text == "hello world " and message.account.text_chars == 12


def test_the_call_text_bound_spans_items_transcripts_and_tool_arguments() -> None:
    core = make_core(limits=ProviderLimits(max_item_text_chars=100, max_call_text_chars=30))
    feed(core, user_turn("U1"))
    base = {"item_id": "U1", "content_index": 0}
    done = ev("conversation.item.input_audio_transcription.completed", transcript="x" * 20, **base)
    (final,) = feed(core, [done])
    assert isinstance(final, InputTranscription) and final.text == "x" * 20
    feed(core, [response_created("R1"), *message_start("R1", "A", 0, None)])
    feed(core, message_deltas("R1", "A", 0, ["0123456789", "abcdef"], chunk_ms=10))
    out = feed(core, function_call("R1", "F", 1, "c1", "f", ['{"a": 1}']))
    (message,) = streams(core).responses["R1"].messages
    assert message.account.text == "0123456789"  # 20 + 10: the call's 30 characters are used
    (ready,) = [o for o in out if isinstance(o, ToolCallReady)]
    assert ready.call.arguments == ""  # nothing left for the arguments either


def test_oversized_audio_is_dropped_not_counted() -> None:
    limits = ProviderLimits(max_delta_bytes=20_000, max_item_audio_s=0.3)
    core = make_core(limits=limits)
    feed(core, [response_created("R1"), *message_start("R1", "A", 0, None)])
    common = {"response_id": "R1", "item_id": "A", "output_index": 0, "content_index": 0}
    delta = "response.output_audio.delta"
    out = feed(
        core,
        [
            ev(delta, delta=audio_b64(500), **common),  # 32 kB of base64: over the delta bound
            *[ev(delta, delta=audio_b64(100), **common) for _ in range(4)],  # 4th: over 300 ms
        ],
    )
    assert [o.ms for o in out if isinstance(o, AudioDelta)] == [pytest.approx(100.0)] * 3
    (message,) = streams(core).responses["R1"].messages
    assert message.account.received_ms == pytest.approx(300.0)


def test_a_provider_announcing_items_without_end_ends_the_call() -> None:
    """Empty items cost memory no text or audio bound sees: past the item bound the call ends.

    Items already tracked are still updated; nothing past the bound is kept; the fatal
    error is reported once however many items keep coming.
    """
    core = make_core(limits=ProviderLimits(max_call_items=3))
    feed(core, user_turn("U1"))
    feed(core, [response_created("R1"), *message_start("R1", "A", 0, "U1")])
    empty = [{"id": f"X{i}", "type": "message", "role": "user", "content": []} for i in range(5)]
    out = feed(core, [ev("conversation.item.added", item=item) for item in empty])
    errors = [o for o in out if isinstance(o, ProviderError)]
    assert [(e.kind, e.code) for e in errors] == [(ErrorKind.FATAL, "item_budget")]
    assert core.mirror.ids() == ["U1", "A", "X0"]
    out = feed(core, [*message_start("R1", "B", 1, "A"), *user_turn("U2")])
    assert "B" not in core.mirror and "U2" not in core.mirror
    assert not [o for o in out if isinstance(o, ProviderError)]  # reported once
    done = ev("conversation.item.done", item={**empty[0], "status": "completed"})
    feed(core, [done])  # a tracked item is still updated
    assert core.mirror.get("X0").status == "completed"  # type: ignore[union-attr]


def test_an_item_id_that_is_not_a_string_does_not_raise() -> None:
    """Found by the mutator fuzzer: the item-budget check ran outside the malformed-event
    guard, so a list as `item_id` raised TypeError (unhashable) out of `receive`."""
    core = make_core()
    bad: object
    for bad in (["item_1"], {}, 7):
        out = core.receive(ev("input_audio_buffer.committed", item_id=bad, previous_item_id=None))
        assert not [o for o in out if isinstance(o, ProviderError)]


def test_items_announced_by_retrieve_replies_count_against_the_item_bound() -> None:
    """A `conversation.item.retrieved` for an item the mirror lacks adds it (asked or not),
    so a peer sending them without end is bounded like one announcing items."""
    core = make_core(limits=ProviderLimits(max_call_items=2))
    empty = [{"id": f"X{i}", "type": "message", "role": "user", "content": []} for i in range(5)]
    out = feed(core, [ev("conversation.item.retrieved", item=item) for item in empty])
    errors = [o for o in out if isinstance(o, ProviderError)]
    assert [(e.kind, e.code) for e in errors] == [(ErrorKind.FATAL, "item_budget")]
    assert core.mirror.ids() == ["X0", "X1"]


def test_item_ids_that_are_not_strings_count_against_the_item_bound() -> None:
    """The handlers keep such an item (under `str()` of its id), so the bound must see it:
    a peer sending numeric ids cannot grow the call past `max_call_items`."""
    core = make_core(limits=ProviderLimits(max_call_items=2))
    committed = [
        ev("input_audio_buffer.committed", item_id=n, previous_item_id=None) for n in range(5)
    ]
    errors = [o for o in feed(core, committed) if isinstance(o, ProviderError)]
    assert [(e.kind, e.code) for e in errors] == [(ErrorKind.FATAL, "item_budget")]
    assert sorted(core.mirror.ids()) == ["0", "1"]


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_item_text_chars"):
        ProviderLimits(max_item_text_chars=0)
