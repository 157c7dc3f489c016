"""Log ↔ trace correlation: records logged during a traced call carry its trace and span ids.

Why: a warning in a worker's log ("tool output rejected", "reconnect attempt 2 failed") is
only useful if it leads to the call it happened in — and from there to the call's trace. While
tracing is on, each traced call's span is the current OpenTelemetry context of the code that
runs the call (see `vocalis.telemetry.attach`; asyncio copies it into every task the call
starts), so a log-record factory can stamp every record — runtime, provider client, the app's
own tools — with `trace_id` and `span_id`. The CLI's JSON log format
(`vocalis.utils.logcontext.JsonFormatter`) writes them as fields; records outside a traced
call get none.
"""

from __future__ import annotations

import logging
from typing import Any

from opentelemetry import trace

__all__ = ["install_log_correlation", "span_ids"]

_installed = False


def span_ids() -> tuple[str, str] | None:
    """(trace id, span id) in hex of the current span, or None outside a live traced call."""
    span = trace.get_current_span()
    ctx = span.get_span_context()
    if not ctx.is_valid or not span.is_recording():
        return None
    return trace.format_trace_id(ctx.trace_id), trace.format_span_id(ctx.span_id)


def install_log_correlation() -> None:
    """Stamp `trace_id` / `span_id` on log records made inside traced calls (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        ids = span_ids()
        if ids is not None:
            record.trace_id, record.span_id = ids
        return record

    logging.setLogRecordFactory(factory)
