"""Reading the standard OTEL_* variables: exporters, the off switch, the content opt-in."""

from __future__ import annotations

import pytest

from vocalis import telemetry
from vocalis.providers.openai.realtime import OpenAIRealtimeModel
from vocalis.runtime.session import AgentSession
from vocalis.telemetry import sdk
from vocalis.telemetry.config import TelemetryConfig, TelemetryConfigError
from vocalis.transports.memory import MemoryTransport
from vocalis.utils.clock import ManualClock


def test_nothing_set_means_nothing_exported() -> None:
    assert TelemetryConfig.from_env({}) == TelemetryConfig()
    assert TelemetryConfig.from_env({"OTEL_TRACES_EXPORTER": "none"}).traces == frozenset()


def test_exporters_are_a_comma_separated_list() -> None:
    config = TelemetryConfig.from_env(
        {"OTEL_TRACES_EXPORTER": " OTLP, console ", "OTEL_METRICS_EXPORTER": "otlp"}
    )
    assert config.traces == {"otlp", "console"}
    assert config.metrics == {"otlp"}
    assert not config.capture_content


def test_sdk_disabled_wins_and_content_is_opt_in() -> None:
    env = {"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"}
    assert TelemetryConfig.from_env(env) == TelemetryConfig()
    opted = TelemetryConfig.from_env({"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "True"})
    assert opted.capture_content


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OTEL_TRACES_EXPORTER": "jaeger"}, "unsupported exporter jaeger"),
        ({"OTEL_METRICS_EXPORTER": "prometheus,otlp"}, "OTEL_METRICS_EXPORTER"),
        ({"OTEL_TRACES_EXPORTER": "none,console"}, "'none' cannot be combined"),
        ({"OTEL_SDK_DISABLED": "maybe"}, "expected true or false"),
    ],
)
def test_unsupported_values_are_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(TelemetryConfigError, match=message):
        TelemetryConfig.from_env(env)


async def test_a_session_is_not_observed_when_telemetry_is_off() -> None:
    """The test process names no exporter and sets no global provider: tracing is off."""
    assert sdk.tracer_provider() is None and sdk.meter_provider() is None
    clock = ManualClock()
    transport = MemoryTransport(clock)
    session = AgentSession(OpenAIRealtimeModel(api_key="sk-test-unused"), transport, clock=clock)
    assert telemetry.attach(session) is None
    assert telemetry.trace_id(session) is None
    await transport.aclose()
