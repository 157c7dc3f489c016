"""S5: ten seconds of audio generated long before it plays; barge-in at 2.0 s of playback."""

from __future__ import annotations

from conformance_support import harness

from vocalis.conversation.heard import heard_prefix
from vocalis.runtime.events import Interrupted

LONG = (
    "Let me walk you through the whole process step by step. First you open the settings "
    "page, then you choose the account tab, then you scroll down to the security section, "
    "and finally you press the button that says reset password and follow the email."
)


async def test_s5_truncate_at_played_not_received_nor_generation_time() -> None:
    scenario = {"responses": [{"say": LONG}, {"say": "Sure."}]}
    async with harness(scenario) as h:
        h.say("How do I reset my password?")
        run = await h.response(0)
        message = run.playout.pulled[0].message
        assert message.audio_received_ms > 9000  # everything arrived before playback

        await h.play_until(lambda: h.segment_started(message.item_id))
        start = h.clock.now()
        await h.play(2.0)
        h.start_talking("Stop.")
        interrupted = await h.event(Interrupted)
        # The queue is emptied at once: nothing queued, nothing more played.
        assert h.transport.sink.pending_segments == 0
        await h.until(lambda: run.settled)
        h.silence()
        await h.play(0.5)
        assert all(p.at <= interrupted.at for p in h.recorder.pieces_of(message.item_id))

        (truncate,) = h.client_events("conversation.item.truncate")
        assert abs(truncate["audio_end_ms"] - 2000) <= 20
        assert abs(h.recorder.played_ms(message.item_id) - truncate["audio_end_ms"]) < 1
        assert interrupted.at - start <= 2.0 + 0.02
        (item,) = h.assistant_messages()[:1]
        assert item.text == heard_prefix(LONG, truncate["audio_end_ms"], message.audio_received_ms)
        assert 0 < len(item.text) < len(LONG) / 3
        assert h.session.agent_states[:4] == ["listening", "thinking", "speaking", "listening"]
