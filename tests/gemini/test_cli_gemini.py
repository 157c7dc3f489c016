"""`--provider gemini` on the CLI: the endpoint rule, and `vocalis run` offline on the
embedded sim speaking Gemini (history, recording and timeline written)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vocalis.app.endpoint import GEMINI_DEFAULT_MODEL, add_endpoint_arguments, choose_endpoint
from vocalis.app.errors import UsageError
from vocalis.audio.espeak import synthesize
from vocalis.audio.frame import AudioFrame
from vocalis.audio.wav import write_wav

REPO = Path(__file__).resolve().parents[2]


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_endpoint_arguments(parser)
    return parser.parse_args(list(argv))


def test_endpoint_rule_for_gemini() -> None:
    embedded = choose_endpoint(_args("--provider", "gemini"), env={"OPENAI_API_KEY": "sk-x"})
    assert (embedded.kind, embedded.provider, embedded.model) == (
        "embedded",
        "gemini",
        GEMINI_DEFAULT_MODEL,
    )
    by_model = choose_endpoint(_args("--model", "gemini-live-2.5-flash-preview"), env={})
    assert by_model.provider == "gemini" and by_model.model == "gemini-live-2.5-flash-preview"
    google = choose_endpoint(_args("--provider", "gemini"), env={"GOOGLE_API_KEY": "g-secret"})
    assert (google.kind, google.api_key) == ("gemini", "g-secret")
    assert "g-secret" not in google.describe() and "Gemini Live" in google.describe()
    offline = choose_endpoint(
        _args("--provider", "gemini", "--offline"), env={"GEMINI_API_KEY": "k"}
    )
    assert offline.kind == "embedded"
    assert choose_endpoint(_args(), env={}).provider == "openai"
    with pytest.raises(UsageError):
        choose_endpoint(_args("--provider", "gemini", "--realtime-url", "http://x"), env={})


def test_run_offline_on_the_gemini_sim_writes_the_outputs(tmp_path: Path) -> None:
    rate = 16000
    speech = synthesize("What is the weather in Paris?", sample_rate=rate)
    samples = np.concatenate(
        [np.zeros(rate // 2, np.int16), speech.samples, np.zeros(rate, np.int16)]
    )
    caller = tmp_path / "caller.wav"
    write_wav(caller, AudioFrame(samples, rate))
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k not in ("GEMINI_API_KEY", "GOOGLE_API_KEY")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "vocalis.cli",
            "run",
            "examples/assistant_with_tools.py:agent",
            "--provider",
            "gemini",
            "--input",
            str(caller),
            "--scenario",
            "examples/scenarios/preamble_tool_answer.yaml",
            "--history",
            str(out / "history.json"),
            "--record",
            str(out / "call.wav"),
            "--timeline",
            str(out / "timeline.html"),
            "--max-seconds",
            "60",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Gemini Live" in result.stdout
    items = json.loads((out / "history.json").read_text())["items"]
    assistant = [i["text"] for i in items if i["type"] == "message" and i["role"] == "assistant"]
    assert assistant == [
        "Let me check the weather for you.",
        "It is sunny in Paris right now, at 22 degrees.",
    ]
    assert [i["name"] for i in items if i["type"] == "function_call"] == ["get_weather"]
    assert (out / "call.wav").stat().st_size > 0 and (out / "timeline.html").stat().st_size > 0


def test_demo_check_for_gemini_wants_the_heard_text_in_the_service() -> None:
    from vocalis.app.demo_run import check_gemini

    cut = {
        "id": "m1",
        "interrupted": True,
        "text": "The weekend looks",
        "generated_text": "The weekend looks mixed.",
    }
    assert check_gemini([cut], [("user", "Hi"), ("model", "The weekend looks")]) == []
    kept_unheard = check_gemini([cut], [("model", "The weekend looks mixed.")])
    assert len(kept_unheard) == 2  # the heard text is missing and the unheard words remain
