"""A small conversation with every case the timeline must draw (shared by timeline tests)."""

from __future__ import annotations

from vocalis.app.reports.timeline import (
    Timeline,
    TimelineMessage,
    TimelineState,
    TimelineTool,
    TimelineTurn,
)


def sample_timeline() -> Timeline:
    return Timeline(
        title="sample <conversation> & co",
        messages=[
            TimelineMessage(
                "u1", "user", "What's the weather in Paris?", start_ms=600, end_ms=2300
            ),
            TimelineMessage(
                "a1",
                "assistant",
                "Let me check that for you.",
                played_ms=1500.0,
                generated_ms=1500.0,
                start_ms=2900,
                turn=1,
            ),
            TimelineMessage(
                "a2",
                "assistant",
                "It is sunny and 22 degrees in Paris.",
                played_ms=2600.0,
                generated_ms=2600.0,
                start_ms=4700,
                turn=1,
            ),
            TimelineMessage("u2", "user", "And tomorrow?", start_ms=8200, end_ms=9100),
            TimelineMessage(
                "a3",
                "assistant",
                "Tomorrow will be",
                generated_text="Tomorrow will be cloudy with rain in the afternoon.",
                interrupted=True,
                played_ms=1100.0,
                generated_ms=3400.0,
                start_ms=9700,
                turn=2,
            ),
            TimelineMessage(
                "a4",
                "assistant",
                "",
                generated_text="Anything else?",
                interrupted=True,
                played_ms=0.0,
                generated_ms=900.0,
                start_ms=13100,  # where it would have played: after a3's 3400 ms generated
                turn=2,
            ),
            TimelineMessage("u3", "user", "Stop, thanks.", start_ms=10800, end_ms=11700),
        ],
        tools=[
            TimelineTool(
                "call_1",
                "get_weather",
                '{"city": "Paris"}',
                '{"sky": "sunny", "c": 22}',
                start_ms=3000,
                end_ms=3050,
                after_item_id="a1",
            )
        ],
        turns=[
            TimelineTurn(1, latency_ms=600.0, at_ms=2900, user_end_ms=2300),
            TimelineTurn(2, latency_ms=600.0, at_ms=9700, user_end_ms=9100),
        ],
        states=[
            TimelineState("listening", 0, 2300),
            TimelineState("thinking", 2300, 2900),
            TimelineState("speaking", 2900, 7300),
            TimelineState("listening", 7300, 9100),
            TimelineState("thinking", 9100, 9700),
            TimelineState("speaking", 9700, 10800),
            TimelineState("listening", 10800, 12500),
        ],
        notes=["caller barged in during turn 2"],
        duration_ms=12500,
    )
