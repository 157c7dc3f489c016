"""The OTLP recipe end to end: `vocalis run` with `OTEL_TRACES_EXPORTER=otlp` sends the call's
spans over OTLP/HTTP to a collector at `OTEL_EXPORTER_OTLP_ENDPOINT` (here a minimal real
OTLP/HTTP receiver on port 0, see `telemetry_support.OtlpReceiver`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from telemetry_support import REPO, caller_wav, env_without_otel, otlp_receiver

pytestmark = pytest.mark.timeout(150)


def test_vocalis_run_exports_the_calls_spans_over_otlp(tmp_path: Path) -> None:
    with otlp_receiver() as collector:
        env = env_without_otel(
            OTEL_TRACES_EXPORTER="otlp",
            OTEL_EXPORTER_OTLP_ENDPOINT=collector.endpoint,
            OTEL_SERVICE_NAME="weather-agent",
        )
        result = subprocess.run(
            [sys.executable, "-m", "vocalis.cli", "run", "examples/assistant_with_tools.py:agent",
             "--input", str(caller_wav(tmp_path)), "--offline",
             "--scenario", "examples/scenarios/preamble_tool_answer.yaml",
             "--history", str(tmp_path / "history.json"), "--max-seconds", "60"],
            capture_output=True, text=True, cwd=REPO, env=env, timeout=120,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert {path for path, _ in collector.requests} == {"/v1/traces"}
        received = collector.spans()
    assert {(service, scope) for service, scope, _ in received} == {("weather-agent", "vocalis")}
    names = {span.name for _, _, span in received}
    assert {"vocalis.call", "vocalis.response", "vocalis.tool_call"} <= names
    [call] = [span for _, _, span in received if span.name == "vocalis.call"]
    history = (tmp_path / "history.json").read_text()
    assert f'"trace_id": "{call.trace_id.hex()}"' in history
