"""The house size rules for `src/`: modules under 500 lines, functions under 60.

Why a test: the rules were kept by hand for two releases and drifted twice (a 534-line
protocol core, a 62-line VAD step) before a reviewer noticed. Small modules with one job
and short functions are what keeps the runtime easy to change; a test makes drift visible
in the change that causes it. Generated tables would be named in `EXEMPT`; none exist.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60
EXEMPT: frozenset[str] = frozenset()


def _sources() -> list[Path]:
    paths = sorted(SRC.rglob("*.py"))
    assert paths, f"no sources under {SRC}"
    return [p for p in paths if str(p.relative_to(SRC)) not in EXEMPT]


def test_every_module_is_under_the_line_cap() -> None:
    long = {
        str(p.relative_to(SRC)): n
        for p in _sources()
        if (n := p.read_text(encoding="utf-8").count("\n")) > MAX_MODULE_LINES
    }
    assert long == {}, f"modules over {MAX_MODULE_LINES} lines: split them by job"


def test_every_function_is_under_the_line_cap() -> None:
    long: dict[str, int] = {}
    for path in _sources():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(SRC)}:{node.lineno} {node.name}"] = lines
    assert long == {}, f"functions over {MAX_FUNCTION_LINES} lines"
