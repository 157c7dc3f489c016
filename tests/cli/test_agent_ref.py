"""AGENT_REF loading: every first-run mistake is one clear sentence (and exit code 2 in the CLI)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vocalis.app.agent_ref import load_agent, split_ref
from vocalis.app.errors import UsageError


def write(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(body)
    return path


def error_of(ref: str) -> str:
    with pytest.raises(UsageError) as info:
        load_agent(ref)
    message = str(info.value)
    assert "\n" not in message, "errors must fit on one line"
    return message


def test_split_ref_forms() -> None:
    assert split_ref("agents/a.py:bot") == ("agents/a.py", "bot")
    assert split_ref("pkg.mod:make") == ("pkg.mod", "make")
    assert split_ref("agents/a.py") == ("agents/a.py", "agent")
    assert split_ref(r"C:\agents\a.py:bot") == (r"C:\agents\a.py", "bot")
    assert split_ref(r"C:\agents\a.py") == (r"C:\agents\a.py", "agent")


@pytest.mark.parametrize("ref", ["", "   ", ":agent"])
def test_empty_parts(ref: str) -> None:
    assert "AGENT_REF" in error_of(ref)


def test_name_must_be_identifier() -> None:
    assert "not a Python identifier" in error_of("pkg.mod:not-valid")


def test_missing_file(tmp_path: Path) -> None:
    message = error_of(f"{tmp_path}/nope.py:agent")
    assert message == f"agent file not found: {tmp_path}/nope.py"


def test_missing_module() -> None:
    message = error_of("no_such_package_xyz.agents:agent")
    assert message.startswith("module not found: no_such_package_xyz.agents")


def test_module_whose_own_import_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "brokenmod_abc.py", "import no_such_dependency_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    message = error_of("brokenmod_abc:agent")
    assert message.startswith("importing brokenmod_abc failed")
    assert "no_such_dependency_xyz" in message


def test_syntax_error_names_line(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.py", "x = 1\ndef (:\n")
    assert error_of(f"{path}:agent").startswith(f"syntax error in {path} line 2")


def test_file_raising_on_import(tmp_path: Path) -> None:
    path = write(tmp_path, "boom.py", "raise RuntimeError('no prompt file')\n")
    assert error_of(f"{path}:agent") == (f"importing {path} failed: RuntimeError: no prompt file")


def test_missing_attribute(tmp_path: Path) -> None:
    path = write(tmp_path, "empty.py", "x = 1\n")
    assert error_of(f"{path}:bot") == f"{path} has no attribute 'bot'"


def test_not_an_agent(tmp_path: Path) -> None:
    path = write(tmp_path, "num.py", "agent = 42\n")
    assert error_of(f"{path}") == f"{path}:agent is int, not an Agent (or a function returning one)"


def test_class_is_not_an_agent(tmp_path: Path) -> None:
    path = write(tmp_path, "cls.py", "class agent:\n    pass\n")
    assert "is a class" in error_of(f"{path}:agent")


def test_factory_with_arguments(tmp_path: Path) -> None:
    path = write(tmp_path, "fac.py", "def make(name, size):\n    return name\n")
    assert error_of(f"{path}:make") == (
        f"{path}:make needs arguments: an agent factory takes none or one (the CallInfo)"
    )


def test_async_factory(tmp_path: Path) -> None:
    path = write(tmp_path, "afac.py", "async def make():\n    return None\n")
    assert "async function" in error_of(f"{path}:make")


def test_factory_raising(tmp_path: Path) -> None:
    path = write(tmp_path, "rfac.py", "def make():\n    raise ValueError('bad config')\n")
    assert error_of(f"{path}:make") == f"calling {path}:make() failed: ValueError: bad config"


def test_factory_returning_wrong_type(tmp_path: Path) -> None:
    path = write(tmp_path, "wfac.py", "def make():\n    return 'hello'\n")
    assert error_of(f"{path}:make") == f"{path}:make() returned str, not an Agent"


def test_a_tool_is_not_an_agent(tmp_path: Path) -> None:
    body = (
        "from vocalis import function_tool\n\n"
        "@function_tool\ndef get_weather(city: str) -> str:\n    return city\n"
    )
    path = write(tmp_path, "tools.py", body)
    assert error_of(f"{path}:get_weather") == (
        f"{path}:get_weather is a tool, not an Agent: list it in Agent(tools=[...]) "
        "and name the agent"
    )


def test_a_tool_parameter_type_without_json_schema(tmp_path: Path) -> None:
    body = (
        "import socket\nfrom vocalis import Agent, function_tool\n\n"
        "@function_tool\ndef send(conn: socket.socket) -> str:\n    return ''\n\n"
        "agent = Agent('x', tools=[send])\n"
    )
    path = write(tmp_path, "badtool.py", body)
    message = error_of(str(path))
    assert message.startswith(f"importing {path} failed: TypeError: tool send: parameter 'conn'")


PER_CALL = (
    "from vocalis import Agent\n\n"
    "def make(call):\n"
    "    return Agent(f'{call.transport} {dict(call.parameters)}')\n"
)


def test_a_per_call_factory_gets_the_call_info(tmp_path: Path) -> None:
    from vocalis.app.agent_ref import load_agent_factory
    from vocalis.transports.base import CallInfo

    path = write(tmp_path, "percall.py", PER_CALL)
    factory = load_agent_factory(f"{path}:make")
    agent = factory(CallInfo(transport="twilio", parameters={"tier": "vip"}))
    assert agent.instructions == "twilio {'tier': 'vip'}"
    # Commands with one call of their own (run, chat, console) call it once, as "cli".
    assert load_agent(f"{path}:make").instructions == "cli {}"


def test_a_per_call_factory_returning_something_else_fails_per_call(tmp_path: Path) -> None:
    from vocalis.app.agent_ref import load_agent_factory
    from vocalis.transports.base import CallInfo

    path = write(tmp_path, "badcall.py", "def make(call):\n    return 'nope'\n")
    factory = load_agent_factory(f"{path}:make")
    with pytest.raises(TypeError, match="returned str, not an Agent"):
        factory(CallInfo())
