"""The "client on its own" example in docs/ actually runs (embedded simulator, no key)."""

from __future__ import annotations

import importlib.util
import wave
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).parents[2] / "docs" / "examples" / "stream_reply_to_wav.py"


def test_stream_reply_to_wav_example(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("stream_reply_to_wav", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "reply.wav"
    assert module.main(["--out", str(out), "What's the weather?"]) == 0
    printed = capsys.readouterr().out
    # Two messages of one response (preamble + answer), both written in order.
    assert "'Let me think.'" in printed and "'Here is my answer.'" in printed
    with wave.open(str(out)) as wav:
        assert wav.getframerate() == 24000 and wav.getnchannels() == 1
        assert wav.getnframes() > 24000 // 2
