"""One line that says what is wrong in a scenario file, and where.

Why: `run` and `serve` printed the first line of the exception — `1 validation error for
Scenario` or `while scanning a quoted scalar` — which names neither the field nor the line.
This turns each kind of failure into the part a user fixes: the field path and pydantic's
reason for every invalid value, the line and column of a YAML or JSON syntax error.
"""

from __future__ import annotations

import json

import pydantic
import yaml

MAX_PROBLEMS = 3


def _field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(top level)"


def describe(exc: BaseException) -> str:
    """The fix-it description of a scenario loading error (no file name, one line)."""
    if isinstance(exc, pydantic.ValidationError):
        errors = exc.errors()
        problems = [f"{_field_path(err['loc'])}: {err['msg']}" for err in errors[:MAX_PROBLEMS]]
        more = f" (and {len(errors) - MAX_PROBLEMS} more)" if len(errors) > MAX_PROBLEMS else ""
        return "; ".join(problems) + more
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        what = " ".join(part for part in (exc.context, exc.problem) if part)
        return f"line {mark.line + 1} column {mark.column + 1}: {what}"
    if isinstance(exc, json.JSONDecodeError):
        return f"line {exc.lineno} column {exc.colno}: {exc.msg}"
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
