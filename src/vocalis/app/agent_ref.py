"""Resolve an AGENT_REF (`path/to/file.py:name` or `package.module:name`) to an `Agent`.

Why a module of its own: every command (`run`, `serve`, `console`) starts from a string the user
typed, and the most common first-run mistakes are all here (wrong path, wrong attribute name,
a module that fails to import, an object that is not an agent). Each becomes one `UsageError`
sentence naming what was tried, so the CLI can print it on one line and exit 2.

Rules:
* `file.py:name` loads the file as a fresh module (its folder is put on `sys.path` first, so an
  example may import its sibling modules); `package.module:name` is a normal import.
* Without `:name` the attribute `agent` is used.
* The attribute may be an `Agent`, a zero-argument function returning one (a factory, called
  once: useful when building the agent needs work such as reading a prompt file), or a
  function of one argument, the call's `CallInfo` (a per-call factory: `serve` calls it for
  every call with the caller id, Twilio custom parameters or the page's metadata; `run`,
  `chat` and `console` call it once with their own call's info).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from vocalis.app.errors import UsageError
from vocalis.transports.base import CallInfo

DEFAULT_ATTRIBUTE = "agent"
# Agents handed over in memory (`run_app`), by the name the commands show for them.
_REGISTERED: dict[str, object] = {}
# Makes the agent for one call (a constant for a plain Agent or a zero-argument factory).
AgentFactory = Callable[[CallInfo], Any]


def register_agent(name: str, agent: object) -> str:
    """Make `agent` loadable as the AGENT_REF `name` (for `run_app`); returns the ref."""
    _REGISTERED[name] = agent
    return name


def is_registered(ref: str) -> bool:
    """Was `ref` registered by `run_app` (only the script that registered it can load it)?"""
    return ref in _REGISTERED


def split_ref(ref: str) -> tuple[str, str]:
    """Split `target:name` (the last `:` wins, so Windows drive letters keep working)."""
    ref = ref.strip()
    if not ref:
        raise UsageError("empty AGENT_REF: expected path/to/file.py:name or package.module:name")
    target, sep, name = ref.rpartition(":")
    if not sep or "/" in name or "\\" in name or name.endswith(".py"):
        return ref, DEFAULT_ATTRIBUTE
    if not target:
        raise UsageError(f"AGENT_REF {ref!r} has no module or file before ':'")
    if not name.isidentifier():
        raise UsageError(f"AGENT_REF {ref!r}: {name!r} is not a Python identifier")
    return target, name


def _looks_like_path(target: str) -> bool:
    return target.endswith(".py") or "/" in target or "\\" in target


def _load_file(target: str) -> ModuleType:
    path = Path(target).expanduser()
    if not path.is_file():
        raise UsageError(f"agent file not found: {target}")
    path = path.resolve()
    module_name = f"_vocalis_agent_{path.stem}_{abs(hash(str(path))):x}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise UsageError(f"cannot load {target} as a Python module")
    module = importlib.util.module_from_spec(spec)
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        sys.modules.pop(module_name, None)
        raise UsageError(f"syntax error in {target} line {exc.lineno}: {exc.msg}") from exc
    except Exception as exc:
        sys.modules.pop(module_name, None)
        raise UsageError(f"importing {target} failed: {type(exc).__name__}: {exc}") from exc
    return module


def _import_module(target: str) -> ModuleType:
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (target == exc.name or target.startswith(exc.name + ".")):
            raise UsageError(
                f"module not found: {target} (give a file path like agents/my_agent.py:agent "
                "or an importable package.module:name)"
            ) from exc
        raise UsageError(f"importing {target} failed: {exc}") from exc
    except Exception as exc:
        raise UsageError(f"importing {target} failed: {type(exc).__name__}: {exc}") from exc


def _agent_type() -> type[Any] | None:
    """The runtime's `Agent` class, imported lazily so this module stays light."""
    try:
        runtime = importlib.import_module("vocalis.runtime")
    except ImportError:  # runtime not importable: fall back to duck typing
        return None
    agent_cls = getattr(runtime, "Agent", None)
    return agent_cls if inspect.isclass(agent_cls) else None


def _is_agent(obj: object) -> bool:
    agent_cls = _agent_type()
    if agent_cls is not None:
        return isinstance(obj, agent_cls)
    return hasattr(obj, "instructions") and hasattr(obj, "tools")


def _describe(obj: object) -> str:
    return type(obj).__name__


def _takes_call_info(factory: Callable[..., object]) -> bool:
    """Whether `factory` is called without arguments (False) or with the CallInfo (True)."""
    try:
        signature = inspect.signature(factory)
    except ValueError:  # builtins without a signature: just try calling without arguments
        return False
    try:
        signature.bind()
        return False
    except TypeError:
        pass
    signature.bind(CallInfo())  # TypeError: neither shape
    return True


def resolve_factory(obj: object, ref: str) -> AgentFactory:
    """The named object as a per-call factory; a plain agent or zero-argument factory is
    resolved now (so its mistakes surface before anything connects)."""
    plain_function = (
        callable(obj)
        and not _is_agent(obj)
        and not inspect.isclass(obj)
        and type(obj).__name__ != "FunctionTool"
        and not inspect.iscoroutinefunction(obj)
    )
    if plain_function:
        try:
            per_call = _takes_call_info(obj)  # type: ignore[arg-type]
        except TypeError:
            raise UsageError(
                f"{ref} needs arguments: an agent factory takes none or one (the CallInfo)"
            ) from None
        if per_call:
            return lambda call: _checked(obj(call), f"{ref}(call)")  # type: ignore[operator]
    agent = resolve(obj, ref)
    return lambda _call: agent


def _checked(produced: object, what: str) -> Any:
    if not _is_agent(produced):
        raise TypeError(f"{what} returned {_describe(produced)}, not an Agent")
    return produced


def resolve(obj: object, ref: str) -> Any:
    """Turn the named object into an agent: use it, or call it when it is a factory."""
    if _is_agent(obj):
        return obj
    if inspect.isclass(obj):
        raise UsageError(f"{ref} is a class, not an Agent: name an Agent instance or a factory")
    if type(obj).__name__ == "FunctionTool":
        raise UsageError(
            f"{ref} is a tool, not an Agent: list it in Agent(tools=[...]) and name the agent"
        )
    if callable(obj):
        factory: Callable[..., object] = obj
        if inspect.iscoroutinefunction(factory):
            raise UsageError(f"{ref} is an async function: agent factories must be plain functions")
        try:
            per_call = _takes_call_info(factory)
        except TypeError:
            raise UsageError(
                f"{ref} needs arguments: an agent factory takes none or one (the CallInfo)"
            ) from None
        try:
            produced = factory(CallInfo(transport="cli")) if per_call else factory()
        except Exception as exc:
            raise UsageError(f"calling {ref}() failed: {type(exc).__name__}: {exc}") from exc
        if _is_agent(produced):
            return produced
        raise UsageError(f"{ref}() returned {_describe(produced)}, not an Agent")
    raise UsageError(f"{ref} is {_describe(obj)}, not an Agent (or a function returning one)")


def load_agent(ref: str) -> Any:
    """Load the agent named by `ref`; raises `UsageError` with a one-line reason.

    A per-call factory is called once with `CallInfo(transport="cli")`."""
    return resolve(*_named(ref))


def load_agent_factory(ref: str) -> AgentFactory:
    """Load `ref` as a per-call factory (for `serve`); raises `UsageError`."""
    return resolve_factory(*_named(ref))


def _named(ref: str) -> tuple[object, str]:
    """The object `ref` names (a `run_app` registration, a module or file attribute) and the
    label errors show for it."""
    if ref in _REGISTERED:
        return _REGISTERED[ref], ref
    target, name = split_ref(ref)
    module = _load_file(target) if _looks_like_path(target) else _import_module(target)
    _check_attribute(module, target, name)
    return getattr(module, name), f"{target}:{name}"


def _check_attribute(module: ModuleType, target: str, name: str) -> None:
    if not hasattr(module, name):
        candidates = sorted(
            attr
            for attr, value in vars(module).items()
            if not attr.startswith("_") and _is_agent(value)
        )
        hint = f"; agents defined there: {', '.join(candidates)}" if candidates else ""
        raise UsageError(f"{target} has no attribute {name!r}{hint}")
