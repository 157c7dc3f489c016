"""The README's five-line agent test runs as written (extracted from README.md, not copied)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from vocalis import Agent

README = Path(__file__).resolve().parents[2] / "README.md"


def _snippet() -> str:
    section = README.read_text(encoding="utf-8").split("## Test your agent", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "README's 'Test your agent' section has no python block"
    return match.group(1)


async def test_the_readme_agent_test_passes(agent_test: Any) -> None:
    code = _snippet()
    assert len(code.strip().splitlines()) == 5
    namespace: dict[str, Any] = {"agent": Agent("You are a weather assistant.")}
    exec(compile(code, str(README), "exec"), namespace)
    await namespace["test_weather"](agent_test)
