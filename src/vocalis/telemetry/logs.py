"""Log ↔ trace correlation: every log record carries the current trace and span ids.

Why: a warning in a worker's log ("tool output rejected", "reconnect attempt 2 failed") is
only useful if it leads to the call it happened in. While tracing is on, each traced call's
span is the current OpenTelemetry context of the code that runs the call (see
`vocalis.telemetry.attach`), so every record logged from it — runtime, provider client, the
app's own tools — gets `otelTraceID` / `otelSpanID` (the attribute names of OpenTelemetry's
logging instrumentation, so existing log formats and collectors understand them).

`JsonLogFormatter` writes one JSON object per record with those ids, for log pipelines that
index fields (`trace_id` then links straight to the trace in Jaeger, Tempo, ...).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

__all__ = ["JsonLogFormatter", "install_log_correlation", "span_ids"]

_NO_TRACE = "0"
_installed = False


def span_ids() -> tuple[str, str]:
    """(trace id, span id) of the current span in hex; ("0", "0") outside a live call span."""
    span = trace.get_current_span()
    ctx = span.get_span_context()
    if not ctx.is_valid or not span.is_recording():
        return _NO_TRACE, _NO_TRACE
    return trace.format_trace_id(ctx.trace_id), trace.format_span_id(ctx.span_id)


def install_log_correlation() -> None:
    """Add `otelTraceID` / `otelSpanID` to every log record from now on (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.otelTraceID, record.otelSpanID = span_ids()
        return record

    logging.setLogRecordFactory(factory)


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, trace_id, span_id (+ exc)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "trace_id": getattr(record, "otelTraceID", _NO_TRACE),
            "span_id": getattr(record, "otelSpanID", _NO_TRACE),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)
