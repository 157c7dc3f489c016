"""A broken `--scenario` file ends `vocalis run` / `serve` with one line naming the field or
the line to fix (not `1 validation error for Scenario`), before anything connects."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vocalis.audio.frame import AudioFrame
from vocalis.audio.wav import write_wav
from vocalis.cli import main


@pytest.fixture
def wav(tmp_path: Path) -> Path:
    path = tmp_path / "q.wav"
    write_wav(path, AudioFrame(np.zeros(1600, np.int16), 16000))
    return path


def run_with(tmp_path: Path, wav: Path, name: str, text: str) -> str:
    scenario = tmp_path / name
    scenario.write_text(text)
    code = main(
        ["run", "examples/minimal_agent.py", "--input", str(wav), "--scenario", str(scenario)]
    )
    assert code == 2
    return str(scenario)


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        (
            "typo.yaml",
            "responses:\n  - sya: Hello\n",
            "responses[0].sya: Extra inputs are not permitted",
        ),
        (
            "quote.yaml",
            'responses:\n  - say: "Hello\n',
            "line 3 column 1: while scanning a quoted scalar found unexpected end of stream",
        ),
        ("broken.json", '{"responses": [}', "line 1 column 16: Expecting value"),
    ],
)
def test_scenario_errors_name_the_field_or_line(
    tmp_path: Path, wav: Path, capsys: pytest.CaptureFixture[str], name: str, text: str,
    expected: str,
) -> None:  # fmt: skip
    path = run_with(tmp_path, wav, name, text)
    err = capsys.readouterr().err.strip()
    assert err == f"vocalis run: error: invalid scenario {path}: {expected}"
