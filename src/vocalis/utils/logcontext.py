"""Per-call context on every log record, and the text / JSON formats the CLI writes.

Why: a server runs many calls at once, and a record such as "tool get_weather failed" is only
useful if it says *which* call. The code that starts a call binds its fields once
(`with bind_call(call="3", transport="twilio"): ...`); asyncio copies the context into every
task created inside, so records logged by the runtime, the provider client and the user's own
tools all carry them, with no logger argument threaded through.

Other parts add their own fields the same way (telemetry adds trace and span ids through a
log-record factory): `JsonFormatter` writes every non-standard attribute of a record, so a
field added by anyone reaches the JSON logs without this module knowing about it.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

__all__ = [
    "CallContextFilter",
    "JsonFormatter",
    "TextFormatter",
    "bind_call",
    "current_call",
]

_CALL: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("vocalis_call")
# The attributes every LogRecord has; anything else was added on purpose (extra=, a filter, a
# record factory) and belongs in the JSON object.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "call"}


def current_call() -> dict[str, str]:
    """The fields bound for the running call ({} outside any call)."""
    return _CALL.get({})


@contextlib.contextmanager
def bind_call(**fields: object) -> Iterator[None]:
    """Add `fields` to the call context for the block (and every task it starts)."""
    merged = {**current_call(), **{key: str(value) for key, value in fields.items()}}
    token = _CALL.set(merged)
    try:
        yield
    finally:
        _CALL.reset(token)


class CallContextFilter(logging.Filter):
    """Copies the call context onto each record as `record.call` (a dict; {} outside calls).

    Attach it to handlers (not loggers) so records from every library logger get it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "call"):
            record.call = current_call()
        return True


def _call_label(record: logging.LogRecord) -> str:
    call: dict[str, str] = getattr(record, "call", {}) or {}
    return " ".join(f"{key}={value}" for key, value in call.items())


class TextFormatter(logging.Formatter):
    """`12:00:01 WARNING call=3 transport=twilio vocalis.runtime.tools: message`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(context)s%(name)s: %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        label = _call_label(record)
        record.context = f"{label} " if label else ""
        return super().format(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the call's fields, every extra
    attribute (e.g. trace ids), and the traceback as `exception`."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "call", {}) or {})
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key != "context" and key not in entry:
                entry[key] = value if isinstance(value, (str, int, float, bool)) else str(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)
