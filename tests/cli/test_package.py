"""The top-level package: every advertised name imports, and importing it (or the CLI's
`--help`) stays light — the runtime, numpy and websockets load only when used."""

from __future__ import annotations

import subprocess
import sys

import pytest

import vocalis


@pytest.mark.parametrize("name", [n for n in vocalis.__all__ if n != "__version__"])
def test_every_exported_name_resolves(name: str) -> None:
    value = getattr(vocalis, name)
    assert getattr(value, "__name__", name) == name


def test_unknown_name_is_an_attribute_error() -> None:
    typo = "Agnet"
    with pytest.raises(AttributeError, match="no attribute 'Agnet'"):
        getattr(vocalis, typo)


def test_import_and_help_load_nothing_heavy() -> None:
    probe = (
        "import sys, vocalis\n"
        "from vocalis import cli\n"
        "cli.build_parser()\n"
        "heavy = [m for m in ('vocalis.runtime', 'numpy', 'websockets') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=30
    )
    assert out.stdout.strip() == "[]"
