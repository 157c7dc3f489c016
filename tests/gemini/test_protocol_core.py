"""The Gemini client's sans-I/O core fed with plain server-message sequences (no loop, no
sockets), and the heard-contract planning as hypothesis properties."""

from __future__ import annotations

import base64
from typing import Any, TypeVar

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from vocalis.conversation.items import MessageItem
from vocalis.providers.base import (
    InputAudioCommitted,
    InputSpeechStarted,
    InputSpeechStopped,
    InputTranscription,
)
from vocalis.providers.core_events import (
    AudioDelta,
    ItemAnnounced,
    MessageEnded,
    MessageStarted,
    ResponseEnded,
    ResponseStarted,
    TextDelta,
    ToolCallReady,
)
from vocalis.providers.gemini.heard import (
    Correct,
    HeardStrategy,
    NoChange,
    Reseed,
    ServerTurn,
    plan_heard_sync,
    record_of,
    unheard_turns,
)
from vocalis.providers.gemini.protocol import GeminiProtocol, GoAway, SetupDone

PCM = np.arange(480, dtype=np.int16)  # 20 ms at 24 kHz
E = TypeVar("E")


def audio(*, urlsafe: bool = False, snake: bool = False) -> dict[str, Any]:
    raw = PCM.astype("<i2").tobytes()
    data = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(raw).decode()
    if snake:
        blob = {"inline_data": {"mime_type": "audio/pcm;rate=24000", "data": data}}
        return {"server_content": {"model_turn": {"parts": [blob]}}}
    blob = {"inlineData": {"mimeType": "audio/pcm;rate=24000", "data": data}}
    return {"serverContent": {"modelTurn": {"parts": [blob]}}}


def content(**body: Any) -> dict[str, Any]:
    return {"serverContent": body}


def of(kind: type[E], event: object) -> E:
    """`event`, checked to be a `kind` (a test failure otherwise)."""
    assert isinstance(event, kind), event
    return event


def kinds(events: list[Any]) -> list[str]:
    return [type(e).__name__ for e in events]


def test_spoken_turn_sequence() -> None:
    core = GeminiProtocol()
    assert kinds(core.receive({"setupComplete": {}})) == ["SetupDone"]
    heard = core.receive(content(inputTranscription={"text": "What is"}))
    heard += core.receive(content(inputTranscription={"text": " the weather?"}))
    assert [e.text for e in heard if isinstance(e, InputTranscription)] == [
        "What is",
        "What is the weather?",
    ]
    first = core.receive(audio())
    assert kinds(first) == [
        "InputSpeechStopped",
        "InputAudioCommitted",
        "InputTranscription",
        "ResponseStarted",
        "MessageStarted",
        "AudioDelta",
    ]
    transcript = of(InputTranscription, first[2])
    assert transcript.final and transcript.text == "What is the weather?"
    started = first[4]
    assert isinstance(started, MessageStarted) and started.account.received_ms == 20.0
    more = core.receive(audio(urlsafe=True, snake=True)) + core.receive(
        content(outputTranscription={"text": "Sunny."})
    )
    assert kinds(more) == ["AudioDelta", "TextDelta"] and started.account.received_ms == 40.0
    end = core.receive(content(generationComplete=True))
    assert kinds(end) == ["AudioEnded", "TextEnded", "MessageEnded", "ResponseEnded"]
    done = of(ResponseEnded, end[-1]).done
    assert (done.status, done.output_item_ids) == ("completed", (started.item_id,))
    assert core.receive(content(turnComplete=True)) == []  # the turn already ended
    assert [(t.kind, t.text) for t in core.server_record] == [
        ("user", "What is the weather?"),
        ("model", "Sunny."),
    ]


def test_tool_call_ends_the_response_and_the_continuation_is_held_back() -> None:
    core = GeminiProtocol()
    core.receive(audio())
    call = {"id": "c1", "name": "get_weather", "args": {"city": "Paris"}}
    out = core.receive({"toolCall": {"functionCalls": [call]}})
    assert kinds(out) == [
        "AudioEnded",
        "TextEnded",
        "MessageEnded",
        "ItemAnnounced",
        "ToolCallReady",
        "ResponseEnded",
    ]
    ready = out[4]
    assert isinstance(ready, ToolCallReady) and ready.call.arguments == '{"city":"Paris"}'
    assert of(ResponseEnded, out[-1]).done.reason == "tool_call"
    again = core.receive({"toolCall": {"functionCalls": [call]}})
    assert not any(isinstance(e, ToolCallReady) for e in again)  # exactly once per call id

    core.tool_output_sent("c1", "fo_c1", '{"sky": "sunny"}')
    assert core.self_start_expected
    assert core.receive(audio()) == [] and core.holding  # held back, nothing for the runtime
    released = core.claim_held("req_1")
    assert isinstance(released[0], ResponseStarted) and released[0].request_id == "req_1"
    assert kinds(released[1:]) == ["MessageStarted", "AudioDelta"]
    assert kinds(core.receive(audio())) == ["AudioDelta"]  # streams live once claimed


def test_barge_in_cancels_and_a_cut_held_answer_never_surfaces() -> None:
    core = GeminiProtocol()
    core.receive(audio())
    out = core.receive(content(interrupted=True))
    assert isinstance(out[0], InputSpeechStarted)
    assert [
        (type(e).__name__, getattr(e, "status", None)) for e in out if isinstance(e, MessageEnded)
    ] == [("MessageEnded", "cancelled")]
    done = of(ResponseEnded, out[-1]).done
    assert done.status == "cancelled" and done.reason == "turn_detected"

    core.tool_output_sent("c9", "fo_c9", "{}")  # the service will answer by itself
    core.receive(audio())
    interrupted = core.receive(content(interrupted=True))
    assert kinds(interrupted) == ["InputSpeechStarted"] and not core.holding


def test_connection_loss_ends_everything_and_resume_trims_the_record() -> None:
    core = GeminiProtocol()
    core.receive(audio())
    core.receive(content(generationComplete=True))
    core.receive({"sessionResumptionUpdate": {"newHandle": "h1", "resumable": True}})
    core.receive(audio())
    lost = core.connection_lost()
    assert isinstance(lost[-1], ResponseEnded) and lost[-1].done.status == "disconnected"
    assert len(core.server_record) == 2
    core.record.resumed("h1")
    assert len(core.server_record) == 1  # the service restores the state of the handle
    assert core.receive({"goAway": {"timeLeft": "9.5s"}}) == [GoAway(9.5)]


def test_calls_and_cancellations_are_tracked() -> None:
    core = GeminiProtocol()
    core.receive({"toolCall": {"functionCalls": [{"id": "c1", "name": "f", "args": {}}]}})
    core.receive({"toolCallCancellation": {"ids": ["c1"]}})
    assert core.cancelled_calls == {"c1"} and core.idle
    events = core.receive({"toolCall": {"functionCalls": [{"id": "c2", "name": "f"}]}})
    assert any(isinstance(e, ItemAnnounced) for e in events)
    assert not any(
        isinstance(e, (SetupDone, InputAudioCommitted, InputSpeechStopped, AudioDelta, TextDelta))
        for e in events
    )


# --------------------------------------------------------------------------- heard planning

_WORDS = st.lists(
    st.sampled_from(["the", "weather", "is", "sunny", "today", "in", "Paris"]),
    min_size=1,
    max_size=8,
)


@st.composite
def _conversations(draw: st.DrawFn) -> tuple[list[ServerTurn], list[MessageItem], list[bool]]:
    record: list[ServerTurn] = []
    items: list[MessageItem] = []
    cut: list[bool] = []
    for n in range(draw(st.integers(1, 5))):
        question = " ".join(draw(_WORDS))
        record.append(ServerTurn("user", f"u{n}", question))
        items.append(MessageItem(f"u{n}", "user", question))
        words = draw(_WORDS)
        keep = draw(st.integers(0, len(words)))
        record.append(ServerTurn("model", f"m{n}", " ".join(words)))
        heard = " ".join(words[:keep])
        cut.append(keep < len(words))
        if heard:
            items.append(MessageItem(f"m{n}", "assistant", heard, interrupted=keep < len(words)))
    return record, items, cut


@settings(max_examples=300, deadline=None)
@given(_conversations(), st.sampled_from(list(HeardStrategy)))
def test_heard_plan_properties(conversation: Any, strategy: HeardStrategy) -> None:
    record, items, cut = conversation
    plan = plan_heard_sync(strategy, record, items)
    if strategy is HeardStrategy.NONE or not any(cut):
        assert isinstance(plan, NoChange)
        return
    if strategy is HeardStrategy.RESEED:
        assert isinstance(plan, Reseed) and list(plan.items) == items
        # A session seeded with the heard history holds nothing unheard (idempotent).
        assert unheard_turns(record_of(items), items) == []
    else:
        assert isinstance(plan, Correct)
        assert len(plan.unheard) == sum(cut)
        if strategy is HeardStrategy.CORRECT_THEN_RESEED:
            told = frozenset(u.item_id for u in plan.unheard)
            later = plan_heard_sync(strategy, record, items, told)
            assert isinstance(later, Reseed) and list(later.items) == items
        for unheard in plan.unheard:
            quoted = f'heard only: "{unheard.heard}"' if unheard.heard else "did not hear"
            assert quoted in plan.note


def test_peer_data_is_bounded_per_item() -> None:
    from vocalis.providers.base import ProviderLimits

    limits = ProviderLimits(max_item_text_chars=10, max_item_audio_s=0.03, max_delta_bytes=2000)
    core = GeminiProtocol(limits=limits)
    first = core.receive(audio())
    started = next(e for e in first if isinstance(e, MessageStarted))
    assert [type(e) for e in core.receive(audio())] == []  # 40 ms > 30 ms: dropped
    assert started.account.received_ms == 20.0
    deltas = core.receive(content(outputTranscription={"text": "0123456789abcdef"}))
    assert [e.delta for e in deltas if isinstance(e, TextDelta)] == ["0123456789"]
    assert core.receive(content(outputTranscription={"text": "more"})) == []
    huge = {"serverContent": {"modelTurn": {"parts": [{"inlineData": {"data": "A" * 4000}}]}}}
    assert core.receive(huge) == []  # over max_delta_bytes: dropped before decoding


def test_a_replaced_connection_ends_what_it_was_streaming() -> None:
    """A re-seed can race the old session's answer: that answer must end, never hang."""
    core = GeminiProtocol()
    core.receive(audio())  # the old session started answering
    core.receive({"toolCall": {"functionCalls": [{"id": "c1", "name": "f", "args": {}}]}})
    core.receive(audio())
    out = core.connection_replaced()
    ended = [e for e in out if isinstance(e, ResponseEnded)]
    assert [(e.done.status, e.done.reason) for e in ended] == [
        ("disconnected", "connection_replaced")
    ]
    assert "c1" in core.cancelled_calls and core.idle  # the new session never saw the call


def test_speech_positions_come_from_the_one_input_timeline() -> None:
    """The caller audio's timeline has one owner, `core.input` (the shell appends to it and
    replays from it): the speech events read their positions there, and it restarts only
    when a new provider session does — never a second count to keep in step."""
    core = GeminiProtocol()
    core.input.append(np.zeros(16000, dtype=np.int16))  # 1 s at 16 kHz
    core.receive(audio())
    [started] = [
        e for e in core.receive(content(interrupted=True)) if isinstance(e, InputSpeechStarted)
    ]
    assert started.audio_start_ms == 700.0  # the onset, 300 ms before the report
    core.input.append(np.zeros(8000, dtype=np.int16))
    core.receive(content(inputTranscription={"text": "Stop."}))
    stopped = [e for e in core.receive(audio()) if isinstance(e, InputSpeechStopped)]
    assert [e.audio_end_ms for e in stopped] == [1500.0]
    assert core.generation_input_ms == 1500.0
    core.connection_lost()  # the timeline is the session's: kept until the shell resets it
    assert core.input.end_ms == 1500.0
    core.input.reset()
    assert core.input.end_ms == 0.0 and core.input.since(0.0) == []


def test_a_checkpoint_does_not_judge_the_response_still_streaming() -> None:
    """The answer after a tool output can stream before the runtime's heard checkpoint of the
    response that called the tool: its turn is not "unheard" yet (judging it re-seeded the
    session and lost the scripted answer in `vocalis run --provider gemini`)."""
    core = GeminiProtocol()
    core.receive(audio())
    core.receive(content(outputTranscription={"text": "Let me check."}))
    call = {"id": "c1", "name": "get_weather", "args": {"city": "Paris"}}
    preamble = of(ResponseEnded, core.receive({"toolCall": {"functionCalls": [call]}})[-1])
    core.tool_output_sent("c1", "fo_c1", '{"sky": "sunny"}')
    core.receive(content(outputTranscription={"text": "It is"}))  # the answer, held back
    answer = [t.item_id for t in core.server_record if t.kind == "model"][-1]
    assert core.unsettled_items == {answer}
    settled = core.record.settled(core.unsettled_items)
    assert answer not in {t.item_id for t in settled}
    heard = [
        MessageItem(id=item_id, role="assistant", text="Let me check.")
        for item_id in preamble.done.output_item_ids
        if item_id.startswith("model")
    ]
    assert plan_heard_sync(HeardStrategy.RESEED, settled, heard) == NoChange()
    assert isinstance(plan_heard_sync(HeardStrategy.RESEED, core.server_record, heard), Reseed)
    core.receive(content(generationComplete=True))
    assert core.unsettled_items == {answer}  # complete, but held back: nobody heard it yet
    core.claim_held("req_1")
    assert core.unsettled_items == frozenset()  # the runtime's now: judged once it settles
