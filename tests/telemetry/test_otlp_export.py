"""The OTLP recipe end to end: `vocalis run` with `OTEL_TRACES_EXPORTER=otlp` sends the call's
spans over OTLP/HTTP to a collector at `OTEL_EXPORTER_OTLP_ENDPOINT`.

The collector here is a minimal real OTLP/HTTP receiver (an HTTP server on port 0 that decodes
`ExportTraceServiceRequest` protobufs, as Jaeger or the OpenTelemetry Collector do).
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from telemetry_support import REPO, caller_wav

pytestmark = pytest.mark.timeout(150)


class _Collector(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Receive)
        self.requests: list[tuple[str, ExportTraceServiceRequest]] = []


class _Receive(BaseHTTPRequestHandler):
    server: _Collector

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        self.server.requests.append((self.path, request))
        answer = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[_Collector]:
    server = _Collector()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_vocalis_run_exports_the_calls_spans_over_otlp(
    collector: _Collector, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(
        OTEL_TRACES_EXPORTER="otlp",
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{collector.server_address[1]}",
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
    spans, services = [], set()
    for _, request in collector.requests:
        for resource_spans in request.resource_spans:
            for attribute in resource_spans.resource.attributes:
                if attribute.key == "service.name":
                    services.add(attribute.value.string_value)
            for scope_spans in resource_spans.scope_spans:
                assert scope_spans.scope.name == "vocalis"
                spans.extend(scope_spans.spans)
    assert services == {"weather-agent"}
    names = {span.name for span in spans}
    assert {"vocalis.call", "vocalis.response", "vocalis.tool_call"} <= names
    [call] = [span for span in spans if span.name == "vocalis.call"]
    history = (tmp_path / "history.json").read_text()
    assert f'"trace_id": "{call.trace_id.hex()}"' in history
