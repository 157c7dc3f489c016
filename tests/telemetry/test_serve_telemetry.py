"""`vocalis serve` with tracing on: a phone call (Twilio Media Streams) is one trace exported
over OTLP, its files carry the trace id, and the worker's `/metrics` counts its facts."""

from __future__ import annotations

import asyncio
import json
import signal
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from telemetry_support import env_without_otel, otlp_receiver
from test_serve import phone_call

from serve_support import read_until, start_serve

pytestmark = pytest.mark.timeout(150)


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_a_served_call_is_traced_and_counted(tmp_path: Path) -> None:
    with otlp_receiver() as collector:
        env = env_without_otel(
            OTEL_TRACES_EXPORTER="otlp",
            OTEL_EXPORTER_OTLP_ENDPOINT=collector.endpoint,
            COLUMNS="200",
        )
        proc = start_serve(
            "examples/assistant_with_tools.py:agent",
            "--twilio", "--port", "0",
            "--scenario", "examples/scenarios/preamble_tool_answer.yaml",
            "--out", str(tmp_path),
            env=env,
        )  # fmt: skip
        lines: list[str] = []
        try:
            assert proc.stdout is not None
            twilio_url = read_until(proc.stdout, r'Stream url="(\S+)"', lines).group(1)
            read_until(proc.stdout, r"Ctrl-C to stop", lines)
            asyncio.run(phone_call(twilio_url))
            read_until(proc.stdout, r"call 1.* ended; wrote", lines)
            origin = twilio_url.replace("ws://", "http://").split("/twilio")[0]
            with urllib.request.urlopen(f"{origin}/metrics", timeout=10) as response:
                samples = _samples(response.read().decode())
        finally:
            proc.send_signal(signal.SIGINT)  # drains; the exporter flushes at exit
            try:
                proc.wait(timeout=30)
            finally:
                proc.kill()
        assert proc.returncode == 0, "".join(lines)
        received = [span for _, _, span in collector.spans()]

    assert samples[("vocalis_tool_calls_total", (("outcome", "ok"),))] == 1
    assert samples[("vocalis_turn_latency_seconds_count", (("origin", "server"),))] >= 1
    assert samples[("vocalis_http_connections_closed_total", (("reason", "head_timeout"),))] == 0
    [call] = [span for span in received if span.name == "vocalis.call"]
    assert {span.trace_id for span in received} == {call.trace_id}
    assert {span.name for span in received} >= {"vocalis.user_turn", "vocalis.tool_call"}
    history = json.loads((tmp_path / "call-1" / "history.json").read_text())
    assert history["trace_id"] == call.trace_id.hex()
