"""What the standard `OTEL_*` environment variables ask vocalis to export (pure parsing).

Why the standard names: operators already set them for every other service (the OpenTelemetry
SDKs of all languages read the same ones), and a collector, Jaeger or Grafana Tempo then needs
no vocalis-specific setup. Unlike the SDK's own default ("otlp" when unset), vocalis exports
nothing unless an exporter is named: a voice worker must not start sending to
`localhost:4318` (and paying for spans) because nobody configured anything.

Read here (everything else, e.g. `OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_SERVICE_NAME`,
`OTEL_RESOURCE_ATTRIBUTES`, `OTEL_BSP_*`, is read by the SDK and its exporters themselves):

* `OTEL_TRACES_EXPORTER` / `OTEL_METRICS_EXPORTER`: comma-separated `otlp`, `console`, `none`;
* `OTEL_SDK_DISABLED=true`: nothing at all;
* `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`: the opt-in for conversation text
  (transcripts, heard text, tool arguments and outputs) in span attributes — the name the
  OpenTelemetry GenAI instrumentations use for the same choice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

__all__ = ["Exporter", "TelemetryConfig", "TelemetryConfigError"]

Exporter = Literal["otlp", "console"]
_EXPORTERS: tuple[Exporter, ...] = ("otlp", "console")
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off", ""})

TRACES_EXPORTER = "OTEL_TRACES_EXPORTER"
METRICS_EXPORTER = "OTEL_METRICS_EXPORTER"
SDK_DISABLED = "OTEL_SDK_DISABLED"
CAPTURE_CONTENT = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"


class TelemetryConfigError(ValueError):
    """An `OTEL_*` variable has a value vocalis cannot honour (named in the message)."""


@dataclass(frozen=True, slots=True)
class TelemetryConfig:
    """The exporters to install (empty: none) and whether span attributes may carry text."""

    traces: frozenset[Exporter] = frozenset()
    metrics: frozenset[Exporter] = frozenset()
    capture_content: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> TelemetryConfig:
        """Parse the variables; raises `TelemetryConfigError` on an unsupported value."""
        if _flag(environ, SDK_DISABLED):
            return cls()
        return cls(
            traces=_exporters(environ, TRACES_EXPORTER),
            metrics=_exporters(environ, METRICS_EXPORTER),
            capture_content=_flag(environ, CAPTURE_CONTENT),
        )


def _exporters(environ: Mapping[str, str], name: str) -> frozenset[Exporter]:
    raw = environ.get(name, "")
    names = {part.strip().lower() for part in raw.split(",") if part.strip()}
    unknown = names - set(_EXPORTERS) - {"none"}
    if unknown:
        raise TelemetryConfigError(
            f"{name}={raw!r}: unsupported exporter {', '.join(sorted(unknown))}; "
            "use otlp, console or none (comma-separated)"
        )
    if "none" in names:
        if len(names) > 1:
            raise TelemetryConfigError(f"{name}={raw!r}: 'none' cannot be combined with others")
        return frozenset()
    return frozenset(exporter for exporter in _EXPORTERS if exporter in names)


def _flag(environ: Mapping[str, str], name: str) -> bool:
    raw = environ.get(name, "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise TelemetryConfigError(f"{name}={environ[name]!r}: expected true or false")
