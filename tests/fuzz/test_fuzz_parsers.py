"""Bad input against every parser of untrusted bytes: no crash, a clear error per message.

Small budget for `make test` (a few seconds): hypothesis-generated JSON and byte strings, plus
a few thousand inputs of the seeded mutator that `bench/fuzz.py` runs a million times.
Accepted or refused with the parser's own error (with a message) are the only outcomes.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from bench.fuzz import (
    Tally,
    collect_openai_corpus,
    fuzz_openai,
    fuzz_playground,
    fuzz_twilio,
    playground_corpus,
    twilio_corpus,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vocalis.providers.core_events import (
    MessageEnded,
    MessageStarted,
    ResponseEnded,
    ResponseStarted,
)
from vocalis.providers.openai.formats import audio_format
from vocalis.providers.openai.protocol import OpenAIProtocol
from vocalis.providers.openai.realtime import decode_server_frame
from vocalis.transports.playground.transport import PlaygroundProtocolError, PlaygroundTransport
from vocalis.transports.twilio.protocol import TwilioProtocolError, parse_message
from vocalis.utils.clock import MonotonicClock

FAST = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)

TWILIO_EVENTS = ["connected", "start", "media", "mark", "stop", "dtmf"]
PLAYGROUND_TYPES = ["ready", "started", "pos", "done", "cleared", "text", "hangup"]


def shaped(types: list[str], key: str) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with a known event type and arbitrary other fields (reach the deep paths)."""
    return st.builds(
        lambda kind, body, extra: {key: kind, **body, **extra},
        st.sampled_from(types),
        st.dictionaries(
            st.sampled_from(
                [
                    "media",
                    "start",
                    "mark",
                    "dtmf",
                    "streamSid",
                    "n",
                    "played",
                    "segments",
                    "text",
                    "payload",
                    "mediaFormat",
                ]
            ),
            json_values,
            max_size=4,
        ),
        st.dictionaries(st.text(max_size=8), json_values, max_size=2),
    )


def encode(value: Any) -> str:
    return json.dumps(value)


# --------------------------------------------------------------------------- twilio


@FAST
@given(
    st.one_of(
        json_values.map(encode),
        shaped(TWILIO_EVENTS, "event").map(encode),
        st.text(max_size=200),
        st.binary(max_size=200),
    )
)
def test_twilio_parser_accepts_or_refuses_clearly(raw: str | bytes) -> None:
    try:
        parse_message(raw)
    except TwilioProtocolError as exc:
        assert str(exc)


def test_twilio_deep_nesting_is_a_clear_refusal() -> None:
    for raw in ("[" * 5000, '{"a":' * 5000):
        with pytest.raises(TwilioProtocolError, match="JSON"):
            parse_message(raw)


# --------------------------------------------------------------------------- playground


@FAST
@given(
    st.one_of(
        json_values.map(encode), shaped(PLAYGROUND_TYPES, "type").map(encode), st.text(max_size=200)
    )
)
async def test_playground_text_accepts_or_refuses_clearly(raw: str) -> None:
    transport = PlaygroundTransport(MonotonicClock())
    transport.handle_text(json.dumps({"type": "ready"}))
    segment = transport.sink.begin_segment("item_1", 24000)
    del segment
    try:
        transport.handle_text(raw)
    except PlaygroundProtocolError as exc:
        assert str(exc)


@FAST
@given(st.binary(max_size=33_000))
async def test_playground_binary_accepts_or_refuses_clearly(data: bytes) -> None:
    transport = PlaygroundTransport(MonotonicClock())
    transport.handle_text(json.dumps({"type": "ready"}))
    try:
        transport.handle_binary(data)
    except PlaygroundProtocolError as exc:
        assert "audio message" in str(exc)


async def test_playground_deep_nesting_is_a_clear_refusal() -> None:
    transport = PlaygroundTransport(MonotonicClock())
    for raw in ("[" * 5000, '{"a":' * 3000):
        with pytest.raises(PlaygroundProtocolError, match="JSON"):
            transport.handle_text(raw)


# --------------------------------------------------------------------------- openai


@settings(FAST, max_examples=150)
@given(
    st.lists(
        st.one_of(
            json_values,
            shaped(
                [
                    "response.created",
                    "response.output_item.added",
                    "response.output_audio.delta",
                    "response.output_audio_transcript.delta",
                    "response.function_call_arguments.done",
                    "response.output_item.done",
                    "response.done",
                    "conversation.item.added",
                    "error",
                    "conversation.item.truncated",
                    "input_audio_buffer.committed",
                    "session.updated",
                ],
                "type",
            ),
        ),
        max_size=12,
    )
)
def test_openai_core_survives_any_event_sequence(events: list[Any]) -> None:
    core = OpenAIProtocol(audio_format=audio_format("pcm16"))
    outputs: list[object] = []
    for event in events:
        outputs += core.receive(event)
    outputs += core.connection_lost("test")
    # Nothing hangs: every response and every message that started also ended.
    started = {o.response_id for o in outputs if isinstance(o, ResponseStarted)}
    assert started == {o.done.response_id for o in outputs if isinstance(o, ResponseEnded)}
    messages = {o.item_id for o in outputs if isinstance(o, MessageStarted)}
    assert messages <= {o.item_id for o in outputs if isinstance(o, MessageEnded)}


@FAST
@given(st.one_of(st.text(max_size=300), st.binary(max_size=300)))
def test_openai_frame_decoding_never_raises(raw: str | bytes) -> None:
    decode_server_frame(raw)


def test_openai_deep_nesting_decodes_to_nothing() -> None:
    assert decode_server_frame("[" * 5000) is None
    assert decode_server_frame('{"type": "x"}') == {"type": "x"}


# --------------------------------------------------------------------------- mutator smoke


@pytest.fixture(scope="module")
def openai_sequences() -> list[list[str]]:
    return collect_openai_corpus()


async def test_mutator_smoke_openai(openai_sequences: list[list[str]]) -> None:
    tally = Tally("openai")
    await fuzz_openai(tally, openai_sequences, 4000, seed=7)
    assert tally.inputs == 4000 and tally.accepted and tally.refused
    assert tally.crashes == [] and tally.invariant_failures == 0


def test_mutator_smoke_twilio() -> None:
    assert len(twilio_corpus()) >= 6
    tally = Tally("twilio")
    fuzz_twilio(tally, 4000, seed=8)
    assert tally.accepted and tally.refused and tally.crashes == []


async def test_mutator_smoke_playground() -> None:
    assert len(playground_corpus()) >= 6
    tally = Tally("playground")
    await fuzz_playground(tally, 4000, seed=9)
    assert tally.accepted and tally.refused and tally.crashes == []


@pytest.mark.parametrize("number", ["Infinity", "-Infinity", "NaN", "1e400"])
async def test_openai_non_finite_numbers_are_refused_not_raised(number: str) -> None:
    """Python's json accepts `Infinity`/`NaN` (not JSON): an index of `Infinity` raised
    OverflowError out of the protocol core and dropped the connection (found by bench/fuzz)."""
    core = OpenAIProtocol(audio_format=audio_format("pcm16"))
    created = {"type": "response.created", "response": {"id": "resp_1", "status": "in_progress"}}
    core.receive(created)
    frame = (
        '{"type": "response.output_item.added", "response_id": "resp_1", "output_index": '
        + number
        + ', "item": {"id": "item_1", "type": "message", "role": "assistant", "content": []}}'
    )
    core.receive(decode_server_frame(frame))
    event = json.loads(frame)  # even when a caller decodes leniently, the core must not raise
    core.receive(event)
    core.connection_lost("test")
