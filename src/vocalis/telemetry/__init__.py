"""OpenTelemetry traces and metrics of vocalis calls (docs/observability.md).

Every `AgentSession` calls `attach(self)` when it is built. With telemetry off (no `OTEL_*`
exporter named, no global provider set by the app) that returns `None` after two look-ups and
subscribes to nothing: the runtime's per-frame and per-event work is exactly what it is
without this package. With it on, a `CallTracer` and the OpenTelemetry call metrics observe the
session's typed events, and the call span becomes the current OpenTelemetry context of the
code that built the session — so logs carry its trace id and spans the app creates (in its
tools, say) join the call's trace.
"""

from __future__ import annotations

from weakref import WeakKeyDictionary

from opentelemetry import context as otel_context
from opentelemetry.metrics import MeterProvider
from opentelemetry.trace import TracerProvider

from vocalis import __version__
from vocalis.telemetry import sdk
from vocalis.telemetry.config import TelemetryConfig, TelemetryConfigError
from vocalis.telemetry.logs import install_log_correlation
from vocalis.telemetry.metrics import LagSource, OtelCallMetrics, observe_call
from vocalis.telemetry.metrics import observe_loop_lag as _observe_loop_lag
from vocalis.telemetry.tracer import CallTracer, Observable

__all__ = [
    "CallTracer",
    "TelemetryConfig",
    "TelemetryConfigError",
    "attach",
    "configure",
    "observe_loop_lag",
    "trace_id",
]

configure = sdk.configure

_INSTRUMENTATION = "vocalis"
_tracers: WeakKeyDictionary[Observable, CallTracer] = WeakKeyDictionary()
_measured: WeakKeyDictionary[Observable, bool] = WeakKeyDictionary()


def attach(
    session: Observable,
    *,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
    capture_content: bool | None = None,
) -> CallTracer | None:
    """Trace and measure `session` when telemetry is on; returns its tracer (or `None`).

    Explicit providers (tests, apps with several pipelines) override the global ones;
    `capture_content` overrides the `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT` opt-in.
    Attaching twice keeps the first tracer. Call before `session.start()`.
    """
    config = sdk.configure()
    meters = meter_provider or sdk.meter_provider()
    if meters is not None and session not in _measured:
        _measured[session] = True
        observe_call(session, [OtelCallMetrics(meters.get_meter(_INSTRUMENTATION, __version__))])
    existing = _tracers.get(session)
    if existing is not None:
        return existing
    provider = tracer_provider or sdk.tracer_provider()
    if provider is None:
        return None
    tracer = CallTracer(
        provider.get_tracer(_INSTRUMENTATION, __version__),
        session.clock,
        capture_content=config.capture_content if capture_content is None else capture_content,
    )
    tracer.subscribe(session)
    _tracers[session] = tracer
    install_log_correlation()
    otel_context.attach(tracer.context)
    return tracer


def trace_id(session: Observable) -> str | None:
    """The call's trace id (32 hex digits) when it is traced, for its artifacts."""
    tracer = _tracers.get(session)
    return tracer.trace_id if tracer is not None else None


def observe_loop_lag(lag: LagSource) -> None:
    """Export a worker's event-loop lag as an OpenTelemetry gauge (when metrics are on)."""
    meters = sdk.meter_provider()
    if meters is not None:
        _observe_loop_lag(meters.get_meter(_INSTRUMENTATION, __version__), lag)
