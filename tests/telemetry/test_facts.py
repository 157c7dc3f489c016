"""The counted facts are pure functions of `TurnMetrics` (property tests) and the exporter
list is parsed the same whatever the order, case or spacing."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from vocalis.runtime.events import MessageMetrics, TurnMetrics
from vocalis.runtime.speech import SpeechKind
from vocalis.telemetry.config import TelemetryConfig
from vocalis.telemetry.facts import response_facts, turn_latency_s

_messages = st.builds(
    MessageMetrics,
    item_id=st.text(min_size=1, max_size=4),
    generated_ms=st.floats(0, 10_000),
    played_ms=st.floats(0, 10_000),
    playout=st.sampled_from(["full", "partial", "skipped"]),
    history_op=st.sampled_from(["none", "truncate", "delete", "replace_text"]),
)
_times = st.none() | st.floats(0, 1e6)


@given(
    messages=st.lists(_messages, max_size=6),
    speech_end=_times,
    first_played=_times,
    origin=st.sampled_from(["server", "reply", "say", "tool_followup"]),
)
def test_facts_count_each_message_once_and_latency_is_never_negative(
    messages: list[MessageMetrics],
    speech_end: float | None,
    first_played: float | None,
    origin: SpeechKind,
) -> None:
    metrics = TurnMetrics(
        response_id="r",
        origin=origin,
        user_speech_end_at=speech_end,
        first_audio_played_at=first_played,
        messages=tuple(messages),
    )
    facts = response_facts(metrics)
    assert facts.origin == origin
    assert facts.truncations == sum(m.history_op == "truncate" for m in messages)
    assert facts.never_played_deletions <= sum(m.history_op == "delete" for m in messages)
    assert facts.truncations + facts.never_played_deletions <= len(messages)
    latency = turn_latency_s(metrics)
    assert facts.turn_latency_s == latency
    if speech_end is None or first_played is None:
        assert latency is None
    else:
        assert latency is not None and latency >= 0.0


@given(
    names=st.lists(st.sampled_from(["otlp", "console", "OTLP", "Console"]), min_size=1),
    pad=st.sampled_from(["", " ", "  "]),
)
def test_exporter_lists_parse_regardless_of_order_case_and_spaces(
    names: list[str], pad: str
) -> None:
    raw = ",".join(f"{pad}{n}{pad}" for n in names)
    config = TelemetryConfig.from_env({"OTEL_TRACES_EXPORTER": raw})
    assert config.traces == {n.lower() for n in names}
