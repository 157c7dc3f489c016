"""Fault matrix, provider side: stalls, garbage, stray errors, expiry, a slow first byte.

Each case runs the real sim + OpenAI client + `AgentSession` on a `ManualClock` playback, and
the harness checks on exit: no task or fd leaks, the heard contract, tools exactly once, no
history item ever lost. On top, each case proves the caller's next turn is still answered.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import pytest
from reliability_support import Harness, check_provider_matches, harness, server_vad, speech

from vocalis.runtime.events import ErrorEvent, Interrupted
from vocalis.runtime.options import AgentSessionOptions
from vocalis.runtime.response import ResponseRun

FIRST = "First answer here."
LONG = (
    "This reply is long enough that a fault can hit it somewhere in the middle, "
    "while the caller is still listening to it."
)
TWO = ["Let me check that for you.", "The shop opens at nine and closes at six."]
TRANSCRIBED = AgentSessionOptions(
    turn_detection=server_vad(),
    input_transcription_model="gpt-4o-mini-transcribe",
    stall_timeout_s=3.0,
)


async def answered(h: Harness, text: str = "Are you still there?") -> None:
    """The caller's next turn gets an answer that plays in full."""
    run = await h.turn(text, len(h.runs))
    assert run.done_info is not None and run.done_info.status == "completed"
    message = run.playout.pulled[0].message
    assert h.recorder.played_ms(message.item_id) > 0
    assert h.assistant_messages()[-1].id == message.item_id
    assert not h.assistant_messages()[-1].interrupted
    await h.settled()
    assert h.session.agent_state == "listening"


async def answered_again(h: Harness, lost: ResponseRun) -> None:
    """A response lost with its connection is answered again on the new one, once, unasked:
    a disconnect is not a barge-in."""
    again = await h.response(h.runs.index(lost) + 1, generated=False)
    await h.finish(again)
    await h.settled()
    assert again.handle.kind == "reply"
    assert h.assistant_messages()[-1].id == again.playout.pulled[0].message.item_id
    assert len(h.runs) == h.runs.index(lost) + 2


def fatal_errors(h: Harness) -> list[ErrorEvent]:
    return [e for e in h.tracker.errors if not e.recoverable]


# --------------------------------------------------------------------------- stall


async def test_stall_mid_response_is_cancelled_by_the_watchdog() -> None:
    scenario = {
        "responses": [
            {
                "say": LONG,
                "faults": [
                    {"kind": "stall", "seconds": 60, "after_audio_ms": {"item": 0, "ms": 600}}
                ],
            },
            {"say": "Back again."},
        ]
    }
    async with harness(scenario, options=TRANSCRIBED) as h:
        h.say("Tell me something.")
        run = await h.response(0, generated=False)
        await h.until(lambda: len(run.playout.pulled) == 1)
        message = run.playout.pulled[0].message
        await h.until(lambda: message.audio_received_ms >= 600)
        # The received audio plays out, then nothing comes; the watchdog cancels.
        await h.play_until(lambda: run.stalled, limit_s=10)
        stall = next(e for e in h.tracker.errors if e.code == "response_stalled")
        assert stall.source == "watchdog" and stall.recoverable
        await h.play_until(lambda: run.settled, limit_s=10)
        assert (await run.generation.done).status == "cancelled"
        assert len(h.client_events("response.cancel")) == 1
        # The heard part is kept as heard (the item's audio stopped at what was received).
        (kept,) = h.assistant_messages()
        assert LONG.startswith(kept.text) and kept.text
        assert kept.played_ms is not None
        assert abs(kept.played_ms - message.audio_received_ms) <= 20
        await h.settled()
        assert h.session.agent_state == "listening"  # without the caller saying anything
        check_provider_matches(h)
        await answered(h)
        assert not fatal_errors(h)


# --------------------------------------------------------------------------- garbage


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "malformed_frame", "after_audio_ms": {"item": 0, "ms": 300}},
        {"kind": "malformed_frame", "frame": '{"type": "response.output_audio.delta", "delta'},
        {"kind": "malformed_frame", "frame": "[" * 5000, "after_audio_ms": {"item": 0, "ms": 300}},
        {"kind": "unknown_event", "after_audio_ms": {"item": 0, "ms": 300}},
        {
            "kind": "unknown_event",
            "event_type": "response.output_audio.delta.v2",
            "after_event": "response.created",
        },
    ],
    ids=[
        "malformed-mid-audio",
        "malformed-truncated-json",
        "deeply-nested-json",
        "unknown-mid-audio",
        "unknown-early",
    ],
)
async def test_garbage_from_the_provider_is_ignored(
    fault: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="vocalis")
    fault = dict(fault)
    if "after_audio_ms" not in fault and "after_event" not in fault:
        fault["after_event"] = "response.output_item.added"
    scenario = {"responses": [{"say": LONG, "faults": [fault]}, {"say": FIRST}]}
    async with harness(scenario, options=TRANSCRIBED) as h:
        run = await h.turn("Tell me something.", 0)
        assert run.done_info is not None and run.done_info.status == "completed"
        (message,) = h.assistant_messages()
        assert message.text == LONG and not message.interrupted
        assert any(e["type"] is None for e in h.sim.server_events) or fault["kind"] != (
            "malformed_frame"
        )
        # Ignored with a warning that names the problem (never the payload), not an error.
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert any("ignoring" in w for w in warnings), warnings
        assert not h.tracker.errors
        await answered(h)
        assert len(h.server.sessions) == 1  # no reconnect needed


# --------------------------------------------------------------------------- stray errors


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (
            "item_truncate_invalid_item_id",
            "Error truncating item: the item with id 'x' does not exist.",
        ),
        ("invalid_value", "Audio content of 2450ms is already shorter than 2535ms"),
        (
            "item_delete_invalid_item_id",
            "Error deleting item: the item with id 'x' does not exist.",
        ),
        ("server_error", "The server had an error while processing your request."),
    ],
    ids=["truncate-unknown-id", "truncate-too-long", "delete-unknown-id", "server-error"],
)
async def test_unsolicited_error_event_mid_response(code: str, message: str) -> None:
    """An error nobody asked for (no pending truncate/delete) is reported, never fatal."""
    fault = {
        "kind": "error",
        "code": code,
        "message": message,
        "after_audio_ms": {"item": 0, "ms": 300},
    }
    scenario = {"responses": [{"say": LONG, "faults": [fault]}, {"say": FIRST}]}
    async with harness(scenario, options=TRANSCRIBED) as h:
        run = await h.turn("Tell me something.", 0)
        assert run.done_info is not None and run.done_info.status == "completed"
        (error,) = h.tracker.errors
        assert error.code == code and error.recoverable and error.operation is None
        assert h.assistant_messages()[0].text == LONG
        await answered(h)


async def test_rejected_truncate_is_reported_and_the_session_goes_on() -> None:
    """The server measures audio coarser than the client expects and refuses a truncate.

    The client already keeps tail cuts on 50 ms steps (the granularity seen in the field), so
    the server here counts in 250 ms steps to provoke the rejection.
    """
    scenario = {
        "server": {"truncate_granularity_ms": 300},
        "responses": [
            {
                "items": [{"say": TWO[0]}, {"say": TWO[1]}],
                "faults": [
                    # Exactly 1000 ms received (the sim cuts a chunk at the fault): the server
                    # counts 900, the client's 50 ms-safe length is 1000.
                    {"kind": "stall", "seconds": 30, "after_audio_ms": {"item": 0, "ms": 1000}}
                ],
            },
            {"say": FIRST},
        ],
    }
    async with harness(scenario, options=TRANSCRIBED) as h:
        h.say("Hello?")
        run = await h.response(0, generated=False)
        await h.until(lambda: len(run.playout.pulled) == 1)
        message = run.playout.pulled[0].message
        await h.until(lambda: message.audio_received_ms >= 1000)
        received = math.floor(message.audio_received_ms)
        server_counts = received - received % 300
        client_safe = received - received % 50
        frames = server_counts // 20 + 1
        assert server_counts < frames * 20 < client_safe, (received, server_counts)
        await h.play((frames - 1) * 0.02)
        h.transport.source.push(speech("Sorry."))
        await h.until(lambda: any(isinstance(e, Interrupted) for e in h.session.event_log))
        await h.until(lambda: run.settled)
        rejected = [e for e in h.tracker.errors if e.operation == "truncate"]
        assert len(rejected) == 1 and rejected[0].recoverable
        h.silence()
        second = await h.response(1, generated=False)
        await h.finish(second)
        assert h.assistant_messages()[-1].text == FIRST
        await h.settled()
        assert h.session.agent_state == "listening"
        assert not fatal_errors(h)


async def test_delete_of_an_item_the_server_already_dropped_is_success() -> None:
    scenario = {"responses": [{"items": [{"say": TWO[0]}, {"say": TWO[1]}]}, {"say": FIRST}]}
    async with harness(scenario, options=TRANSCRIBED) as h:
        h.say("Hello?")
        run = await h.response(0)
        await h.until(lambda: len(run.playout.pulled) == 2)
        first, second = (p.message for p in run.playout.pulled)
        await h.play(0.4)
        h.sim.conversation.delete(second.item_id)  # the server lost it on its own
        h.transport.source.push(speech("Wait."))
        await h.until(lambda: run.settled)
        deletes = [e["item_id"] for e in h.client_events("conversation.item.delete")]
        assert second.item_id in deletes
        assert not [e for e in h.tracker.errors if e.operation == "delete"]
        h.silence()
        await h.response(1, generated=False)
        await h.finish(h.runs[1])
        await h.settled()
        assert first.item_id in {m.id for m in h.assistant_messages()}
        assert second.item_id not in {m.id for m in h.assistant_messages()}
        check_provider_matches(h)


# --------------------------------------------------------------------------- expiry and drops


async def test_session_expired_mid_audio_reconnects_with_the_heard_history() -> None:
    scenario = {
        # One script across connections: the answer again comes from the default brain.
        "server": {"script_scope": "server"},
        "responses": [
            {"say": FIRST, "user_transcript": "Hello there."},
            {
                "say": LONG,
                "user_transcript": "Tell me more.",
                "faults": [{"kind": "session_expired", "after_audio_ms": {"item": 0, "ms": 600}}],
            },
        ],
    }
    async with harness(scenario, options=TRANSCRIBED) as h:
        await h.turn("Hello there.", 0)
        h.say("Tell me more.")
        cut = await h.response(1)
        await h.finish(cut)
        assert cut.done_info is not None and cut.done_info.status == "disconnected"
        new = await h.sim_session(2)
        await answered_again(h, cut)
        assert h.server.sessions[0].close_code == 1001
        assert getattr(h.session.provider, "reconnects", 0) == 1
        kept = h.assistant_messages()[-2]
        assert kept.cut_by == "connection" and not kept.interrupted
        assert LONG.startswith(kept.text) and kept.text
        replayed = [i["id"] for i in h.created_items(new) if i.get("role") == "assistant"]
        assert replayed == [m.id for m in h.assistant_messages()[:-1]]
        check_provider_matches(h, new)
        # `session_expired` is handled by the reconnect: not an error the app must act on.
        assert not h.tracker.errors
        await answered(h)


async def test_drop_after_two_seconds_played_s20() -> None:
    """S20: the socket dies while an item streams, 2.0 s played; nothing hangs."""
    scenario = {
        # One script across connections: the answer again comes from the default brain.
        "server": {"script_scope": "server"},
        "responses": [
            {"say": FIRST, "user_transcript": "Hello there."},
            {
                "say": LONG,
                "user_transcript": "Tell me more.",
                "faults": [
                    {"kind": "stall", "seconds": 60, "after_audio_ms": {"item": 0, "ms": 2500}}
                ],
            },
        ],
    }
    async with harness(scenario, options=TRANSCRIBED) as h:
        await h.turn("Hello there.", 0)
        h.say("Tell me more.")
        cut = await h.response(1, generated=False)
        await h.until(lambda: len(cut.playout.pulled) == 1)
        message = cut.playout.pulled[0].message
        await h.until(lambda: message.audio_received_ms >= 2500)
        await h.play_until(lambda: h.recorder.played_ms(message.item_id) >= 2000)
        h.sim.abort()
        await h.until(lambda: cut.generation.done.done())
        assert cut.generation.done.result().status == "disconnected"
        await h.finish(cut)
        new = await h.sim_session(2)
        await answered_again(h, cut)
        kept = h.assistant_messages()[-2]
        assert kept.cut_by == "connection" and not kept.interrupted
        assert kept.played_ms is not None and kept.played_ms >= 2000
        check_provider_matches(h, new)
        await answered(h)


# --------------------------------------------------------------------------- slow first byte


async def test_slow_first_byte_beyond_the_thinking_timeout_still_plays() -> None:
    """The reply starts late (wall clock); meanwhile the playback clock runs past the stall
    timeout: `thinking` ends, the late reply still plays and lands in the history."""
    scenario = {
        "responses": [
            {"say": FIRST, "faults": [{"kind": "slow_first_byte", "seconds": 2.0}]},
            {"say": "Second."},
        ]
    }
    async with harness(scenario, options=TRANSCRIBED) as h:
        h.say("Hello?")
        await h.until(lambda: bool(h.user_messages()))
        await h.until(lambda: h.session.agent_state == "thinking")
        await h.play(TRANSCRIBED.stall_timeout_s + 0.5)  # far less than 2 s of wall time
        assert not h.runs, "the reply came before the clock ran past the timeout"
        assert h.session.agent_state == "listening"
        run = await h.response(0, generated=False)
        await h.finish(run)
        assert h.assistant_messages()[-1].text == FIRST
        assert not h.tracker.errors
        await answered(h)
