"""Function tools: plain Python functions the model can call.

`@function_tool` (or passing a bare function to `Agent(tools=[...])`) turns a sync or async
function into a `FunctionTool`:

* the JSON schema the model sees comes from the type hints, and the docstring's summary and
  `Args:` section (Google style) become the tool and parameter descriptions;
* the arguments the model sends are validated by a pydantic model built from the signature,
  so the function receives real, typed values;
* nothing the model or the tool does can crash the session: bad JSON, invalid arguments, an
  exception, a timeout or a result that is not JSON-serializable all become an error *output*
  the model reads and can recover from (`ToolResult.is_error`);
* a parameter annotated `ToolContext` is not shown to the model: the session passes the
  call's context there (say, hang up, transfer, hand off; see `vocalis.runtime.context`);
  such tools must be `async def` (the context acts on the event loop);
* and the developer still sees what went wrong: an exception is logged with its traceback
  (the model only gets its one-line summary), bad arguments and timeouts as warnings, a
  `ToolError` (a deliberate answer, not a bug) at info.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast, get_type_hints, overload

import pydantic

from vocalis.providers.base import ToolSpec
from vocalis.runtime.context import ToolContext

log = logging.getLogger(__name__)

ToolFunction = Callable[..., Any]

_SECTION = re.compile(
    r"^(Args|Arguments|Parameters|Returns|Return|Raises|Yields|Examples?|Notes?):\s*$"
)
_ARG_LINE = re.compile(r"^(\*{0,2}\w+)\s*(\([^)]*\))?\s*:\s*(.*)$")


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What the model gets back for one call."""

    output: str
    is_error: bool = False


class ToolError(Exception):
    """Raise from a tool to send the model a clean error message (no traceback text)."""


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """Split a Google-style docstring into (description, {parameter: description})."""
    if not doc:
        return "", {}
    lines = inspect.cleandoc(doc).splitlines()
    summary: list[str] = []
    params: dict[str, str] = {}
    section: str | None = None
    current: str | None = None
    for raw in lines:
        line = raw.rstrip()
        header = _SECTION.match(line.strip())
        if header and not raw.startswith((" ", "\t")):
            section = header.group(1)
            current = None
            continue
        if section is None:
            summary.append(line)
            continue
        if section not in ("Args", "Arguments", "Parameters"):
            continue
        stripped = line.strip()
        if not stripped:
            continue
        indent = len(line) - len(line.lstrip())
        match = _ARG_LINE.match(stripped)
        if match and (current is None or indent <= _arg_indent(lines, current)):
            current = match.group(1).lstrip("*")
            params[current] = match.group(3).strip()
        elif current is not None:
            params[current] = f"{params[current]} {stripped}".strip()
    description = "\n".join(summary).strip()
    # Paragraphs collapse to single spaces: the model does not need the line wrapping.
    description = re.sub(r"(?<!\n)\n(?!\n)", " ", description)
    return description, params


def _arg_indent(lines: list[str], name: str) -> int:
    for line in lines:
        stripped = line.strip()
        if stripped.startswith(name) and _ARG_LINE.match(stripped):
            return len(line) - len(line.lstrip())
    return 0


def _clean_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Drop pydantic's auto titles: noise for the model, and tokens on every session.update."""

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k != "title" or not isinstance(v, str)}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    cleaned = cast(dict[str, Any], strip(schema))
    # Keep property names (a property literally called "title" survives: it is a dict).
    if "properties" in schema:
        cleaned["properties"] = {key: strip(value) for key, value in schema["properties"].items()}
    cleaned.setdefault("properties", {})
    cleaned["type"] = "object"
    return cleaned


class FunctionTool:
    """A callable tool with its schema, validator and error handling."""

    def __init__(
        self,
        fn: ToolFunction,
        *,
        name: str | None = None,
        description: str | None = None,
        timeout: float | None = None,
    ) -> None:
        if isinstance(fn, FunctionTool):
            fn = fn.fn
        self.fn: ToolFunction = fn
        self.name = name or fn.__name__
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", self.name):
            raise ValueError(f"tool name {self.name!r} must match [A-Za-z0-9_-]{{1,64}}")
        doc_description, param_docs = parse_docstring(inspect.getdoc(fn))
        self.description = description if description is not None else doc_description
        self.timeout = timeout
        self._is_async = inspect.iscoroutinefunction(fn)
        self.context_param = _context_parameter(fn)
        if self.context_param is not None and not self._is_async:
            raise TypeError(
                f"tool {self.name} takes a ToolContext, so it must be `async def` "
                "(the context acts on the event loop)"
            )
        self._model = self._build_model(fn, param_docs, skip=self.context_param)
        try:
            schema = self._model.model_json_schema()
        except pydantic.PydanticUserError as exc:  # e.g. a type with no JSON schema
            raise TypeError(f"tool {self.name}: {_type_problem(fn, exc)}") from None
        self.parameters = _clean_schema(schema)

    @staticmethod
    def _build_model(
        fn: ToolFunction, param_docs: dict[str, str], *, skip: str | None = None
    ) -> type[pydantic.BaseModel]:
        signature = inspect.signature(fn)
        try:
            hints = get_type_hints(fn, include_extras=True)
        except Exception:  # unresolvable forward refs: fall back to raw annotations
            hints = {}
        fields: dict[str, Any] = {}
        for pname, param in signature.parameters.items():
            if pname == skip:
                continue
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                raise TypeError(
                    f"tool {fn.__name__}: *args/**kwargs cannot be described to a model"
                )
            annotation = hints.get(pname, param.annotation)
            if annotation is inspect.Parameter.empty:
                annotation = Any
            default = ... if param.default is inspect.Parameter.empty else param.default
            doc = param_docs.get(pname)
            if doc:
                fields[pname] = (annotation, pydantic.Field(default, description=doc))
            else:
                fields[pname] = (annotation, default)
        model_name = "".join(part.capitalize() for part in fn.__name__.split("_")) + "Args"
        try:
            model = pydantic.create_model(
                model_name, __config__=pydantic.ConfigDict(extra="forbid"), **fields
            )
        except pydantic.PydanticUserError as exc:
            raise TypeError(f"tool {fn.__name__}: {_type_problem(fn, exc)}") from None
        return cast(type[pydantic.BaseModel], model)

    @property
    def spec(self) -> ToolSpec:
        return ToolSpec(name=self.name, description=self.description, parameters=self.parameters)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """The decorated function stays callable directly (handy in tests)."""
        return self.fn(*args, **kwargs)

    async def invoke(self, arguments: str, context: ToolContext | None = None) -> ToolResult:
        """Run the tool on the model's JSON arguments. Never raises (except cancellation).

        `context` reaches a tool that declares a `ToolContext` parameter."""
        try:
            raw = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError as exc:
            log.warning("the model sent %s arguments that are not JSON: %s", self.name, exc.msg)
            return _error(f"arguments for {self.name} are not valid JSON ({exc.msg})")
        if not isinstance(raw, dict):
            log.warning("the model sent %s arguments that are not an object", self.name)
            return _error(f"arguments for {self.name} must be a JSON object")
        try:
            parsed = self._model.model_validate(raw)
        except pydantic.ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'arguments'}: {err['msg']}"
                for err in exc.errors()
            )
            log.warning("the model sent invalid arguments for %s: %s", self.name, problems)
            return _error(f"invalid arguments for {self.name}: {problems}")
        kwargs = {name: getattr(parsed, name) for name in type(parsed).model_fields}
        if self.context_param is not None:
            if context is None:
                return _error(f"{self.name} needs the call's context (run it in a session)")
            kwargs[self.context_param] = context
        try:
            result = await self._run(kwargs)
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            log.warning("tool %s timed out after %s s", self.name, self.timeout)
            return _error(f"{self.name} timed out after {self.timeout} s")
        except ToolError as exc:
            log.info("tool %s answered with an error: %s", self.name, exc)
            return _error(str(exc))
        except Exception as exc:
            # The traceback is for the developer; the model gets one line it can act on.
            log.exception("tool %s failed (the model gets an error output)", self.name)
            return _error(f"{self.name} failed: {type(exc).__name__}: {exc}")
        return _serialize(self.name, result)

    async def _run(self, kwargs: dict[str, Any]) -> Any:
        call: Awaitable[Any]
        if self._is_async:
            call = cast(Awaitable[Any], self.fn(**kwargs))
        else:
            # Sync tools run in a worker thread so a slow one cannot freeze audio playout.
            call = asyncio.to_thread(self.fn, **kwargs)
        if self.timeout is None:
            return await call
        async with asyncio.timeout(self.timeout):
            return await call

    def __repr__(self) -> str:
        return f"FunctionTool({self.name!r})"


def _context_parameter(fn: ToolFunction) -> str | None:
    """The name of the parameter annotated `ToolContext`, if any."""
    try:
        hints = get_type_hints(fn)
    except Exception:
        hints = {}
    for pname, param in inspect.signature(fn).parameters.items():
        annotation = hints.get(pname, param.annotation)
        if annotation is ToolContext or annotation == "ToolContext":
            return pname
    return None


def _type_problem(fn: ToolFunction, exc: Exception) -> str:
    """Name the parameter whose type the model cannot be told about (not pydantic's dump)."""
    try:
        hints = get_type_hints(fn, include_extras=True)
    except Exception:
        hints = {}
    for pname, param in inspect.signature(fn).parameters.items():
        annotation = hints.get(pname, param.annotation)
        if annotation is inspect.Parameter.empty:
            continue
        try:
            pydantic.TypeAdapter(annotation).json_schema()
        except Exception:
            shown = getattr(annotation, "__name__", None) or repr(annotation)
            return (
                f"parameter {pname!r} has type {shown}, which cannot be described to the model "
                "as JSON; use str, int, float, bool, a list/dict of those, Literal, an Enum, a "
                "dataclass or a pydantic model"
            )
    return str(exc).splitlines()[0]


def _error(message: str) -> ToolResult:
    return ToolResult(json.dumps({"error": message}), is_error=True)


def _serialize(name: str, result: Any) -> ToolResult:
    if isinstance(result, str):
        return ToolResult(result)
    try:
        if isinstance(result, pydantic.BaseModel):
            return ToolResult(result.model_dump_json())
        if dataclasses.is_dataclass(result) and not isinstance(result, type):
            result = dataclasses.asdict(result)
        return ToolResult(json.dumps(result, ensure_ascii=False))
    except (TypeError, ValueError) as exc:
        return _error(f"{name} returned a result that is not JSON-serializable ({exc})")


@overload
def function_tool(fn: ToolFunction, /) -> FunctionTool: ...


@overload
def function_tool(
    *, name: str | None = None, description: str | None = None, timeout: float | None = None
) -> Callable[[ToolFunction], FunctionTool]: ...


def function_tool(
    fn: ToolFunction | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
) -> FunctionTool | Callable[[ToolFunction], FunctionTool]:
    """Make a function callable by the model: `@function_tool` or `@function_tool(timeout=5)`."""
    if fn is not None:
        return FunctionTool(fn)

    def wrap(inner: ToolFunction) -> FunctionTool:
        return FunctionTool(inner, name=name, description=description, timeout=timeout)

    return wrap


def as_tool(tool: FunctionTool | ToolFunction) -> FunctionTool:
    """Accept decorated tools and plain functions alike."""
    return tool if isinstance(tool, FunctionTool) else FunctionTool(tool)
