"""A conformance call with a preamble, a tool call and a barge-in, traced and measured.

The call (real sim server, real OpenAI client, ManualClock playback — see
`conformance_support`): the caller asks for the weather; response 1 says a preamble and calls
`get_weather`; the tool follow-up (response 2) answers in two messages and the caller barges
in 300 ms into the first (it is truncated, the second is never played and deleted); the
server answers the barge-in turn (response 3).
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
from conformance_support import Harness, harness
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

from vocalis import telemetry
from vocalis.audio.espeak import synthesize
from vocalis.audio.frame import AudioFrame
from vocalis.audio.wav import write_wav
from vocalis.runtime.agent import Agent
from vocalis.runtime.events import Interrupted
from vocalis.runtime.tools import function_tool
from vocalis.telemetry.metrics import observe_call
from vocalis.telemetry.prometheus import PrometheusCallMetrics

PREAMBLE = "Let me check the weather for you."
ANSWER = (
    "It is sunny in Paris right now, twenty two degrees, with a light breeze from the west "
    "in the afternoon and clear skies tonight."
)
THIRD = "Would you like the forecast for tomorrow as well?"
REPLY = "Sure, go ahead."

REPO = Path(__file__).resolve().parents[2]

SCENARIO = {
    "responses": [
        {
            "items": [
                {"say": PREAMBLE},
                {"call": "get_weather", "arguments": {"city": "Paris"}, "call_id": "call_w1"},
            ]
        },
        {"items": [{"say": ANSWER}, {"say": THIRD}]},
        {"say": REPLY},
    ]
}


def caller_wav(folder: Path) -> Path:
    """The question of `vocalis run`'s tool scenario, spoken (16 kHz WAV with pauses)."""
    rate = 16000
    speech = synthesize("What is the weather in Paris?", sample_rate=rate)
    silence = np.zeros(rate // 2, np.int16)
    path = folder / "caller.wav"
    write_wav(path, AudioFrame(np.concatenate([silence, speech.samples, silence, silence]), rate))
    return path


@dataclass
class TracedCall:
    spans: list[ReadableSpan]
    metrics: InMemoryMetricReader
    trace_id: str | None
    harness: Harness
    # What the tool logged while it ran (in a task the session started).
    tool_logs: list[logging.LogRecord]


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def in_memory_tracing() -> tuple[TracerProvider, InMemorySpanExporter]:
    """A tracer provider whose finished spans land in the returned exporter."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


async def traced_call(
    *,
    capture_content: bool = False,
    registry: CollectorRegistry | None = None,
) -> TracedCall:
    """Run the call above with in-memory span and metric exporters; returns what they got."""
    tracer_provider, exporter = in_memory_tracing()
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    tool_log = logging.getLogger("tests.telemetry.tool")
    tool_log.setLevel(logging.INFO)
    collect = _Collect()
    tool_log.addHandler(collect)
    async with harness(SCENARIO, start=False) as h:

        @function_tool
        async def get_weather(city: str) -> dict[str, object]:
            """Current weather.

            Args:
                city: City name.
            """
            tool_log.info("looking up %s", city)
            await h.clock.sleep(0.2)
            return {"city": city, "sky": "sunny", "temperature_c": 22}

        telemetry.attach(
            h.session,
            tracer_provider=tracer_provider,
            meter_provider=meter_provider,
            capture_content=capture_content,
        )
        if registry is not None:
            observe_call(h.session, [PrometheusCallMetrics(registry)])
        await h.session.start(Agent("Weather agent.", tools=[get_weather]))
        h.say("What is the weather in Paris?")
        first = await h.response(0)
        await h.play_until(lambda: first.settled)
        follow = await h.response(1)
        await h.until(lambda: len(follow.playout.pulled) == 2)
        answer = follow.playout.pulled[0].message
        await h.play_until(lambda: h.segment_started(answer.item_id))
        await h.play(0.30)
        h.say("Stop, that's enough.")
        await h.event(Interrupted)
        third = await h.response(2)
        await h.play_until(lambda: third.settled and follow.settled)
        trace_id = telemetry.trace_id(h.session)
    tracer_provider.shutdown()
    tool_log.removeHandler(collect)
    return TracedCall(list(exporter.get_finished_spans()), reader, trace_id, h, collect.records)


class OtlpReceiver(ThreadingHTTPServer):
    """A minimal real OTLP/HTTP trace receiver on 127.0.0.1, port 0 (what Jaeger or the
    OpenTelemetry Collector run): it decodes each `ExportTraceServiceRequest` it is sent."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _OtlpHandler)
        self.requests: list[tuple[str, ExportTraceServiceRequest]] = []

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def spans(self) -> list[tuple[str, str, Span]]:
        """(service.name, instrumentation scope, span) of every span received."""
        found = []
        for _, request in self.requests:
            for resource_spans in request.resource_spans:
                service = next(
                    (
                        kv.value.string_value
                        for kv in resource_spans.resource.attributes
                        if kv.key == "service.name"
                    ),
                    "",
                )
                for scope_spans in resource_spans.scope_spans:
                    found += [(service, scope_spans.scope.name, s) for s in scope_spans.spans]
        return found


class _OtlpHandler(BaseHTTPRequestHandler):
    server: OtlpReceiver

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


@contextlib.contextmanager
def otlp_receiver() -> Iterator[OtlpReceiver]:
    server = OtlpReceiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def env_without_otel(**extra: str) -> dict[str, str]:
    """This process's environment minus every OTEL_* variable, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(extra)
    return env
