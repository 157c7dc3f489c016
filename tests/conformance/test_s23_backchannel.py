"""S23: a backchannel ("mhm") over the agent is not an interruption and not a turn.

Where vocalis decides (server VAD with `interrupt_response=False`, or local VAD), with
`min_duration_s=0.6` and `resume_false_interruption`: playback pauses at the caller's onset,
and resumes from the same sample when the voice lasted less than 0.6 s — no truncate, one
complete assistant message, the backchannel kept out of both conversations (its committed item
deleted, the reply the server starts for it cancelled unheard; locally the input buffer
cleared). A real interruption pauses at the onset too, and is truncated exactly there, however
long the decision took.

Speech length is measured on the audio positions the VAD reports, so these tests push the
caller's audio at once (the server's VAD and the local one see it at audio speed) and the
playback clock only moves when the test says so.
"""

from __future__ import annotations

from conformance_support import Harness, harness, server_vad, speech

from vocalis.providers.base import MessageGeneration
from vocalis.runtime.options import AgentSessionOptions, InterruptionOptions
from vocalis.runtime.response import ResponseRun

ANSWER = (
    "The museum opens at nine in the morning, closes at six in the evening, and on Sundays "
    "it stays open until eight so families can visit after lunch."
)
RESUME = InterruptionOptions(min_duration_s=0.6, resume_false_interruption=True)
SERVER = AgentSessionOptions(
    turn_detection=server_vad(interrupt_response=False), interruption=RESUME
)
LOCAL = AgentSessionOptions(turn_detection=None, interruption=RESUME)


async def answer_playing(h: Harness) -> tuple[ResponseRun, MessageGeneration]:
    """The caller asks; the answer is generated and has played for 2 s (the caller's cue)."""
    h.say("When does the museum open?")
    run = await h.response(0)
    message = run.playout.pulled[0].message
    await h.play_until(lambda: h.segment_started(message.item_id))
    await h.play(2.0)
    return run, message


async def test_s23_server_vad_backchannel_resumes_and_leaves_no_trace() -> None:
    assert len(speech("Uh huh.")) / 24000 < 0.45
    scenario = {"responses": [{"say": ANSWER}, {"say": "Yes?"}]}
    async with harness(scenario, options=SERVER) as h:
        run, message = await answer_playing(h)
        h.say("Uh huh.", trailing_silence_ms=600)
        await h.until(lambda: h.session.snapshot().resumed_after_false_interruption == 1)
        # The server answered the "mhm" (its turn ended while no response was active): that
        # reply is cancelled before a frame of it plays and deleted; the answer plays on.
        await h.until(lambda: len(h.runs) == 2)
        swallowed = h.runs[1]
        await h.play_until(lambda: run.settled and swallowed.settled, limit_s=20)
        await h.settled()

        assert h.recorder.played_ms(message.item_id) == message.audio_received_ms
        (item,) = h.assistant_messages()
        assert item.id == message.item_id and not item.interrupted and item.text == ANSWER
        assert [u.id for u in h.user_messages()] == [h.session.history[0].id]  # only the question
        assert not h.client_events("conversation.item.truncate")
        assert not [p for p in h.recorder.pieces if p.segment_id != message.item_id]
        # Provider side: the answer complete, no "mhm" turn, nothing of the swallowed reply.
        server = [(i.type, i.role, i.id) for i in h.server_items()]
        assert ("message", "assistant", item.id) in server
        assert [r for _t, r, _i in server].count("user") == 1
        assert [r for _t, r, _i in server].count("assistant") == 1
        assert h.session.snapshot().false_interruptions == 1
        assert h.session.agent_state == "listening"


async def test_s23_server_vad_real_interruption_is_truncated_where_playback_paused() -> None:
    scenario = {"responses": [{"say": ANSWER}, {"say": "Of course, go ahead."}]}
    async with harness(scenario, options=SERVER) as h:
        run, message = await answer_playing(h)
        h.start_talking("Wait, wait, I actually have a completely different question for you.")
        await h.until(lambda: h.transport.sink.paused)
        paused_at = h.recorder.played_ms(message.item_id)
        # The decision takes min_duration + the silence window of clock time: nothing plays.
        await h.play_until(lambda: run.interrupted, limit_s=2)
        assert h.recorder.played_ms(message.item_id) == paused_at
        await h.until(lambda: run.settled)
        h.silence()
        second = await h.response(1)
        await h.play_until(lambda: second.settled)

        (truncate,) = h.client_events("conversation.item.truncate")
        assert truncate["item_id"] == message.item_id
        assert truncate["audio_end_ms"] == paused_at
        first, answer = h.assistant_messages()
        assert first.interrupted and first.played_ms == paused_at
        assert answer.text == "Of course, go ahead."
        assert h.session.snapshot().false_interruptions == 0


async def test_s23_local_vad_backchannel_clears_the_input_and_commits_nothing() -> None:
    scenario = {"responses": [{"say": ANSWER}, {"say": "Yes?"}]}
    async with harness(scenario, options=LOCAL) as h:
        run, message = await answer_playing(h)
        h.say("Uh huh.", trailing_silence_ms=800)
        await h.until(lambda: bool(h.client_events("input_audio_buffer.clear")))
        assert h.session.snapshot().resumed_after_false_interruption == 1
        await h.play_until(lambda: run.settled, limit_s=20)
        await h.settled()

        (item,) = h.assistant_messages()
        assert not item.interrupted and item.played_ms == message.audio_received_ms
        assert len(h.client_events("input_audio_buffer.commit")) == 1  # the question only
        assert len(h.client_events("response.create")) == 1
        assert not h.client_events("conversation.item.truncate")
        assert not h.client_events("response.cancel")
        assert len(h.user_messages()) == 1
