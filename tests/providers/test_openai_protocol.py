"""The sans-I/O protocol core fed with the event sequences of the protocol doc §4."""

from __future__ import annotations

import logging
from typing import Any, TypeVar

import numpy as np
import pytest
from openai_script import (
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

from vocalis.providers.base import (
    ErrorKind,
    Generation,
    GenerationStarted,
    InputAudioCommitted,
    InputSpeechStarted,
    InputSpeechStopped,
    InputTranscription,
    MessageGeneration,
    OpCompleted,
    OpFailed,
    ProviderError,
)
from vocalis.providers.openai.formats import audio_format
from vocalis.providers.openai.protocol import (
    ClientOp,
    OpenAIProtocol,
    Output,
    Send,
    Skip,
)
from vocalis.utils.channel import Channel
from vocalis.utils.clock import ManualClock

T = TypeVar("T")


def make_core(**kwargs: Any) -> OpenAIProtocol:
    return OpenAIProtocol(audio_format=audio_format("pcm16"), clock=ManualClock(), **kwargs)


def feed(core: OpenAIProtocol, events: list[dict[str, Any]]) -> list[Output]:
    out: list[Output] = []
    for event in events:
        out.extend(core.receive(event))
    return out


def drain(channel: Channel[T]) -> list[T]:
    items: list[T] = []
    while (item := channel.try_recv()) is not None:
        items.append(item)
    return items


def only_generation(out: list[Output]) -> Generation:
    started = [o for o in out if isinstance(o, GenerationStarted)]
    assert len(started) == 1
    return started[0].generation


def audio_of(message: MessageGeneration) -> np.ndarray:
    return np.concatenate(drain(message.audio))


# --------------------------------------------------------------------------- (a) single message


async def test_single_message_audio_response() -> None:
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
    assert core.mirror.get("A1").text == "Hello there"  # type: ignore[union-attr]
    assert core.idle


async def test_text_only_response_closes_audio_and_streams_text() -> None:
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
async def test_preamble_and_answer_are_separate_messages(overlapping: bool) -> None:
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


async def test_a_closes_at_its_own_done_while_b_is_still_streaming() -> None:
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


async def test_preamble_then_function_call_streams_arguments() -> None:
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


async def test_tool_output_then_requested_response_is_correlated() -> None:
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
    assert results[1].op_id == reply.op_id
    generation = results[1].value
    assert isinstance(generation, Generation)
    assert generation.request_id == reply.op_id and generation.response_id == "R2"
    assert core.mirror.ids() == ["F", "out_1"]
    assert core.mirror.get("out_1").created_by_client  # type: ignore[union-attr]


async def test_create_with_ignored_client_id_is_matched_and_aliased() -> None:
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


async def test_active_response_error_fails_the_request_fast() -> None:
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


async def test_server_vad_barge_in_cancels_and_truncate_clamps() -> None:
    core = make_core()
    events = [*user_turn("U1"), response_created("R1")]
    events += message_start("R1", "A", 0, "U1")
    events += message_deltas("R1", "A", 0, ["Once", " upon"], chunk_ms=250)
    events += [ev("input_audio_buffer.speech_started", audio_start_ms=5000, item_id="U2")]
    events += message_end("R1", "A", 0, "Once upon", "U1", status="incomplete")
    events += [response_done("R1", [{"id": "A"}], status="cancelled", reason="turn_detected")]
    out = feed(core, events)
    generation = next(o.generation for o in out if isinstance(o, GenerationStarted))
    assert any(isinstance(o, InputSpeechStarted) and o.item_id == "U2" for o in out)
    (message,) = drain(generation.messages)
    assert message.status == "cancelled"
    done = generation.done.result()
    assert (done.status, done.reason) == ("cancelled", "turn_detected")

    # The user heard 312.7 ms of the 500 ms received: truncate at 312 (rounded down).
    op = core.truncate("A", 312.7)
    assert isinstance(op, ClientOp) and op.kind == "truncate"
    assert op.event["audio_end_ms"] == 312 and op.event["content_index"] == 0
    # Past what was received, on an item the cancel cut short: clamped to the received 500 ms,
    # and still sent — the transcript may run ahead of the audio, and truncation is what makes
    # the server drop those unheard words.
    tail = core.truncate("A", 9000)
    assert isinstance(tail, ClientOp) and tail.event["audio_end_ms"] == 500
    out = feed(
        core, [ev("conversation.item.truncated", item_id="A", content_index=0, audio_end_ms=312)]
    )
    assert out == [OpCompleted(op.op_id, 312)]
    assert core.mirror.get("A").truncated_ms == 312  # type: ignore[union-attr]
    assert core.mirror.get("A").text == ""  # type: ignore[union-attr]


async def test_truncate_of_item_still_generating_clamps_to_received() -> None:
    core = make_core()
    feed(core, [response_created("R1"), *message_start("R1", "A", 0, None)])
    feed(core, message_deltas("R1", "A", 0, ["x"], chunk_ms=80))
    op = core.truncate("A", 1000.0)
    assert isinstance(op, ClientOp) and op.event["audio_end_ms"] == 80


@pytest.mark.parametrize("ms", [0.0, 0.4, -5.0])
async def test_truncate_below_one_ms_deletes_instead(ms: float) -> None:
    core = make_core()
    feed(core, [response_created("R1"), *message_start("R1", "A", 0, None)])
    feed(core, message_deltas("R1", "A", 0, ["x"], chunk_ms=80))
    op = core.truncate("A", ms)
    assert isinstance(op, ClientOp) and op.kind == "delete"
    assert op.event == {"type": "conversation.item.delete", "event_id": op.op_id, "item_id": "A"}


async def test_truncate_without_received_audio_deletes_and_unknown_skips() -> None:
    core = make_core()
    feed(core, [response_created("R1"), *message_start("R1", "A", 0, None)])
    op = core.truncate("A", 500)
    assert isinstance(op, ClientOp) and op.kind == "delete"
    assert isinstance(core.truncate("nope", 500), Skip)
    assert isinstance(core.delete("nope"), Skip)


async def test_truncate_past_the_servers_length_is_retried_at_that_length() -> None:
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


async def test_truncate_rejected_twice_is_reported_on_its_op() -> None:
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


async def test_other_truncate_rejections_are_reported_on_their_op() -> None:
    core = make_core()
    feed(core, [response_created("R1"), *message_start("R1", "A", 0, None)])
    feed(core, message_deltas("R1", "A", 0, ["x"], chunk_ms=500))
    op = core.truncate("A", 300)
    assert isinstance(op, ClientOp)
    out = feed(core, [error(None, "Only model output audio messages can be truncated", None)])
    assert len(out) == 1 and isinstance(out[0], OpFailed) and out[0].op_id == op.op_id
    assert out[0].error.operation == "truncate"


async def test_delete_of_already_deleted_item_is_success() -> None:
    core = make_core()
    feed(core, [response_created("R1"), *message_start("R1", "A", 0, None)])
    op = core.delete("A")
    assert isinstance(op, ClientOp)
    msg = "Error deleting item: the item with id 'A' does not exist."
    out = feed(core, [error("item_delete_invalid_item_id", msg, None)])
    assert out == [OpCompleted(op.op_id, None)]
    assert "A" not in core.mirror


# --------------------------------------------------------------------------- (e) client cancel


async def test_client_cancel_ends_generation_cancelled() -> None:
    core = make_core()
    feed(core, [response_created("R1"), *message_start("R1", "A", 0, None)])
    generation = core.active_generations[0]
    cancel = core.response_cancel("R1")
    assert cancel["type"] == "response.cancel" and cancel["response_id"] == "R1"
    out = feed(
        core,
        [
            *message_end("R1", "A", 0, "", None, status="incomplete"),
            response_done("R1", [{"id": "A"}], status="cancelled", reason="client_cancelled"),
        ],
    )
    assert out == []
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


async def test_cancel_before_created_cancels_the_late_response() -> None:
    core = make_core()
    reply = core.response_create()
    core.response_cancel()
    out = feed(core, [response_created("R9", metadata={"client_event_id": reply.op_id})])
    sends = [o for o in out if isinstance(o, Send)]
    assert len(sends) == 1 and sends[0].event["response_id"] == "R9"
    assert any(isinstance(o, OpCompleted) and o.op_id == reply.op_id for o in out)


async def test_timed_out_request_is_cancelled_when_it_arrives() -> None:
    core = make_core()
    reply = core.response_create()
    core.discard_request(reply.op_id)
    assert core.idle
    out = feed(core, [response_created("R9", metadata={"client_event_id": reply.op_id})])
    assert [type(o) for o in out] == [GenerationStarted, Send]


# --------------------------------------------------------------------------- robustness


async def test_response_done_without_created_is_tolerated() -> None:
    core = make_core()
    assert feed(core, [response_done("R404", [], status="cancelled", reason="turn_detected")]) == []


async def test_events_before_response_created_start_it_implicitly() -> None:
    core = make_core()
    events = message_start("R1", "A", 0, None) + message_deltas("R1", "A", 0, ["hi"], 20)
    events += [*message_end("R1", "A", 0, "hi", None), response_done("R1", [{"id": "A"}])]
    generation = only_generation(feed(core, events))
    assert [m.item_id for m in drain(generation.messages)] == ["A"]
    assert generation.done.result().status == "completed"


async def test_beta_event_names_and_both_part_spellings() -> None:
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


async def test_malformed_and_unknown_events_warn_rate_limited_without_payload(
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


async def test_connection_lost_ends_everything_exactly_once() -> None:
    core = make_core()
    feed(core, [response_created("R1"), *message_start("R1", "A", 0, None)])
    feed(core, message_deltas("R1", "A", 0, ["partial"], chunk_ms=30))
    feed(core, function_call("R1", "F", 1, "c1", "f", ["{"])[:3])
    generation = core.active_generations[0]
    truncate = core.truncate("A", 10)
    assert isinstance(truncate, ClientOp)
    out = core.connection_lost("dropped")
    failed = [o for o in out if isinstance(o, OpFailed)]
    assert [o.op_id for o in failed] == [truncate.op_id]
    assert all(o.error.kind is ErrorKind.DISCONNECTED for o in failed)
    (message,) = drain(generation.messages)
    assert message.status == "disconnected"
    assert message.audio.closed and message.text.closed
    assert generation.tool_calls.closed and generation.messages.closed
    assert generation.done.result().status == "disconnected"
    # A later disconnect or stray done does not touch it again.
    assert core.connection_lost("again") == []
    assert feed(core, [response_done("R1", [])]) == []
    assert generation.done.result().status == "disconnected"
    # The mirror survives until the next connection opens (replay reads it).
    assert "A" in core.mirror
    core.connection_opened()
    assert len(core.mirror) == 0


async def test_fatal_error_is_flagged() -> None:
    core = make_core()
    out = feed(core, [error("invalid_api_key", "Incorrect API key provided.")])
    assert len(out) == 1 and isinstance(out[0], ProviderError) and out[0].fatal


async def test_failed_response_reports_error() -> None:
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
    assert len(out) == 1 and isinstance(out[0], ProviderError)
    assert out[0].code == "inference_rate_limit_exceeded" and not out[0].fatal


async def test_input_transcription_accumulates_and_updates_mirror() -> None:
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


async def test_commit_empty_is_benign_only_with_server_vad() -> None:
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


async def test_response_items_never_complete_a_pending_create() -> None:
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
