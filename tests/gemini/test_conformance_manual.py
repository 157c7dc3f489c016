"""Local turn detection on Gemini: vocalis' VAD ends the caller's turn, the client sends it
between activityStart and activityEnd (manual activity), and the answer the service starts by
itself is the one the runtime's reply request gets — no second answer."""

from __future__ import annotations

from vocalis.runtime.options import AgentSessionOptions

from .gemini_harness import gemini_harness

SCENARIO = {
    "responses": [
        {"user_transcript": "What is the weather in Paris?", "say": "It is sunny in Paris."},
        {"say": "This second answer must never be generated."},
    ]
}


async def test_local_vad_turn_is_sent_as_one_activity_and_answered_once() -> None:
    options = AgentSessionOptions(turn_detection="local")
    async with gemini_harness(SCENARIO, options=options) as h:
        h.say("What is the weather in Paris?", trailing_silence_ms=1200)
        run = await h.response(0)
        await h.play_until(lambda: run.settled)
        await h.settled()
        sim = h.serving().session
        assert sim.setup is not None and not sim.setup.automatic_vad
        kinds = [
            next(iter(m["realtimeInput"])) for m in sim.client_messages if "realtimeInput" in m
        ]
        assert kinds[0] == "activityStart" and kinds[-1] == "activityEnd"
        assert set(kinds[1:-1]) == {"audio"}
        assert h.local_texts() == [
            ("user", "What is the weather in Paris?"),
            ("model", "It is sunny in Paris."),
        ]
        assert h.service_texts() == h.local_texts()
        assert not any("clientContent" in m for m in sim.client_messages)  # no second request
