"""Installing the OpenTelemetry SDK from the environment, once per process.

Why here and not in each command: every way to run a call (`vocalis run`, `serve`, `demo`, an
app that builds `AgentSession` itself) should honour `OTEL_TRACES_EXPORTER` the same way, and
the SDK's global providers can be set only once per process. The SDK and the OTLP exporter are
the optional `otel` extra: asking for an exporter without them is a clear error, not silence.

An application that configures OpenTelemetry itself (its own global `TracerProvider` /
`MeterProvider`) needs none of the variables: vocalis reports into whatever global provider
is set. With neither, `tracer_provider()` and `meter_provider()` return `None` and nothing is
traced or measured — the runtime does not even subscribe to its events.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from opentelemetry import metrics, trace

from vocalis.telemetry.config import Exporter, TelemetryConfig, TelemetryConfigError

if TYPE_CHECKING:
    from opentelemetry.sdk.resources import Resource

__all__ = ["configure", "meter_provider", "tracer_provider"]

_NEEDS_EXTRA = "the OpenTelemetry SDK is not installed: pip install 'vocalis[otel]'"


_config: TelemetryConfig | None = None  # set by the first `configure()`


def configure(environ: Mapping[str, str] | None = None) -> TelemetryConfig:
    """Read `OTEL_*` and install the exporters they name (the first call only).

    Raises `TelemetryConfigError` for an unsupported value or a missing SDK; the CLI calls this
    at startup so that a typo stops the command instead of losing every trace of the run.
    """
    global _config
    if _config is not None:
        return _config
    config = TelemetryConfig.from_env(os.environ if environ is None else environ)
    if config.traces:
        _install_tracing(config.traces)
    if config.metrics:
        _install_metrics(config.metrics)
    _config = config
    return config


def tracer_provider() -> trace.TracerProvider | None:
    """The provider calls are traced to, or `None` when tracing is off."""
    configure()
    provider = trace.get_tracer_provider()
    if isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
        return None
    return provider


def meter_provider() -> metrics.MeterProvider | None:
    """The provider call metrics are recorded in, or `None` when OTel metrics are off."""
    configure()
    provider = metrics.get_meter_provider()
    # The API's default is a private proxy class; only a provider someone set is "on".
    if isinstance(provider, metrics.NoOpMeterProvider) or type(provider).__name__.startswith(
        "_Proxy"
    ):
        return None
    return provider


def _resource() -> Resource:
    """The SDK's resource (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES) named "vocalis" by
    default instead of the SDK's `unknown_service`."""
    from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource

    from vocalis import __version__

    detected = Resource.create({SERVICE_VERSION: __version__})
    if str(detected.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        detected = detected.merge(Resource({SERVICE_NAME: "vocalis"}))
    return detected


def _install_tracing(exporters: frozenset[Exporter]) -> None:
    try:
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            ConsoleSpanExporter,
            SimpleSpanProcessor,
        )
    except ImportError as exc:
        raise TelemetryConfigError(f"OTEL_TRACES_EXPORTER is set but {_NEEDS_EXTRA}") from exc
    provider = TracerProvider(resource=_resource())
    if "console" in exporters:
        # Printed as each span ends (a debugging aid, not a production exporter).
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    if "otlp" in exporters:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        # Batched in the SDK's own thread: the event loop never waits on the collector.
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)


def _install_metrics(exporters: frozenset[Exporter]) -> None:
    try:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import (
            ConsoleMetricExporter,
            MetricReader,
            PeriodicExportingMetricReader,
        )
    except ImportError as exc:
        raise TelemetryConfigError(f"OTEL_METRICS_EXPORTER is set but {_NEEDS_EXTRA}") from exc
    readers: list[MetricReader] = []
    if "console" in exporters:
        readers.append(PeriodicExportingMetricReader(ConsoleMetricExporter()))
    if "otlp" in exporters:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
    metrics.set_meter_provider(MeterProvider(metric_readers=readers, resource=_resource()))
