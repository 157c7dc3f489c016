"""What tracing costs per audio frame: off (the default) vs a baseline, and on.

    flock /work/team/bench.lock uv run python -m bench.telemetry          # ~2 min
    uv run python -m bench.telemetry --rounds 1 --calls 1                  # smoke

Each measurement is a worker subprocess running whole calls — a spoken question, a preamble, a
tool call and the answer, then a second question whose answer the caller barges into — on the
real runtime, OpenAI client and embedded sim (`vocalis.testing.AgentTest`, virtual-time
playback, so a call takes CPU time, not wall time). It reports process CPU seconds (all
threads: the SDK's batch exporter thread is billed too) over the frames the call moved (caller
frames sent + agent frames played, 20 ms each). Three variants, interleaved round by round so
drifting machine load hits all of them alike:

* ``baseline`` — `vocalis.telemetry.attach` replaced by a no-op: no telemetry code at all;
* ``off`` — as shipped with no ``OTEL_*`` variable and no global provider (the default);
* ``on`` — an SDK `TracerProvider` (batch processor, an exporter that drops the spans after
  counting them) and a `MeterProvider` set globally, as an app or ``OTEL_TRACES_EXPORTER`` would.

Output ``bench/results/telemetry.json``: per variant the median CPU µs per frame over the
rounds, the ratio to the baseline of the same run, and spans per call for ``on``. The baseline's
own round-to-round spread is the noise floor a difference must exceed to count.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import REPO, RESULTS, log, machine, ratio, write_json

VARIANTS = ("baseline", "off", "on")
FRAME_MS = 20.0
QUESTION = "What is the weather in Paris?"
FOLLOW_UP = "And what about tomorrow, should I take an umbrella?"
BARGE_IN = "Stop, that is enough, thank you."
SCENARIO = {
    "responses": [
        {
            "items": [
                {"say": "Let me check the weather for you."},
                {"call": "get_weather", "arguments": {"city": "Paris"}},
            ]
        },
        {"say": "It is sunny in Paris right now, twenty two degrees."},
        {
            "items": [
                {"say": "Tomorrow starts cloudy, with some rain in the afternoon."},
                {"say": "So yes, an umbrella would be a good idea for the evening."},
            ]
        },
        {"say": "Sure."},
    ]
}


# --------------------------------------------------------------------------- worker side


def _install(variant: str) -> Any:
    """Set the process up as `variant`; returns the span counter for "on"."""
    if variant == "baseline":
        import vocalis.telemetry

        vocalis.telemetry.attach = lambda *_a, **_k: None
        return None
    if variant == "off":
        return None
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

    class Counting(SpanExporter):
        spans = 0

        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            Counting.spans += len(spans)
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Counting()))
    trace.set_tracer_provider(provider)
    metrics.set_meter_provider(MeterProvider(metric_readers=[InMemoryMetricReader()]))
    return provider, Counting


async def _one_call(wavs: dict[str, Path]) -> tuple[float, list[Any]]:
    """One call; returns the agent audio played (ms) and the session's events."""
    from vocalis.runtime.agent import Agent
    from vocalis.runtime.events import TurnMetrics
    from vocalis.runtime.tools import function_tool
    from vocalis.testing import AgentTest

    @function_tool
    def get_weather(city: str) -> dict[str, object]:
        """Current weather.

        Args:
            city: City name.
        """
        return {"city": city, "sky": "sunny", "temperature_c": 22}

    played_ms = 0.0
    async with AgentTest(Agent("Weather agent.", tools=[get_weather]), SCENARIO) as call:
        await call.user_speaks(wavs["question"])
        await call.user_speaks(wavs["follow_up"], wait="speaking")
        await call.play(0.6)
        await call.user_speaks(wavs["barge_in"])
        events = list(call.transcript.events)
    for event in events:
        if isinstance(event, TurnMetrics):
            played_ms += sum(m.played_ms for m in event.messages)
    return played_ms, events


def _caller_ms(wavs: dict[str, Path]) -> float:
    """Caller audio one call sends (each turn's speech plus its trailing silence)."""
    from vocalis.testing.call import TRAILING_SILENCE_MS
    from vocalis.transports.file import load_input_wav

    total = 0.0
    for path in wavs.values():
        audio = load_input_wav(path)
        total += audio.num_samples * 1000.0 / audio.sample_rate + TRAILING_SILENCE_MS
    return total


def _caller_wavs(folder: Path) -> dict[str, Path]:
    from vocalis.audio.espeak import synthesize
    from vocalis.audio.frame import AudioFrame
    from vocalis.audio.wav import write_wav

    wavs = {}
    for name, text in (("question", QUESTION), ("follow_up", FOLLOW_UP), ("barge_in", BARGE_IN)):
        clip = synthesize(text, sample_rate=24000)
        path = folder / f"{name}.wav"
        write_wav(path, AudioFrame(clip.samples, 24000))
        wavs[name] = path
    return wavs


def worker(variant: str, calls: int, folder: Path) -> dict[str, Any]:
    import asyncio

    installed = _install(variant)
    folder.mkdir(parents=True, exist_ok=True)
    wavs = _caller_wavs(folder)
    _, events = asyncio.run(_one_call(wavs))  # warm-up: imports, caches, first connections
    if installed:
        installed[0].force_flush()  # the warm-up's spans are not counted below
    spans_before = installed[1].spans if installed else 0
    played_ms = 0.0
    cpu0 = time.process_time()
    for _ in range(calls):
        played_ms += asyncio.run(_one_call(wavs))[0]
    if installed:
        installed[0].force_flush()
    cpu = time.process_time() - cpu0
    frames = round((played_ms + calls * _caller_ms(wavs)) / FRAME_MS)
    spans = (installed[1].spans - spans_before) if installed else 0
    result = {"variant": variant, "calls": calls, "frames": frames, "cpu_s": cpu, "spans": spans}
    if variant != "baseline":
        result["observer_us_per_call"] = _observer_cost_us(events)
    return result


def _observer_cost_us(events: list[Any], reps: int = 300) -> float:
    """CPU µs one call's telemetry adds: the call's recorded events replayed into sessions
    that telemetry attaches to (as configured in this process) minus the same replay with
    nothing attached (the emitter's own dispatch). "off": the cost of `attach` deciding no."""
    from vocalis import telemetry
    from vocalis.runtime.events import EventEmitter
    from vocalis.utils.clock import Clock, ManualClock

    class Replay:
        def __init__(self) -> None:
            self.clock: Clock = ManualClock()
            self.emitter = EventEmitter()
            self.on = self.emitter.on

    def run(attach: bool) -> float:
        start = time.process_time()
        for _ in range(reps):
            session = Replay()
            if attach:
                telemetry.attach(session)
            for event in events:
                session.emitter.emit(event)
        return time.process_time() - start

    run(True)  # warm-up
    return round(max(0.0, run(True) - run(False)) * 1e6 / reps, 1)


# --------------------------------------------------------------------------- orchestration


def _run_worker(variant: str, calls: int, folder: Path) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    env_free = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    out = subprocess.run(
        [sys.executable, "-m", "bench.telemetry", "--worker", variant, "--calls", str(calls),
         "--folder", str(folder)],
        cwd=REPO, env=env_free, capture_output=True, text=True, check=True, timeout=600,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def summarize(rounds: list[list[dict[str, Any]]]) -> dict[str, Any]:
    per_variant: dict[str, list[float]] = {v: [] for v in VARIANTS}
    spans_per_call: list[float] = []
    frames_per_call: list[float] = []
    for measured in rounds:
        for m in measured:
            per_variant[m["variant"]].append(m["cpu_s"] * 1e6 / m["frames"])
            frames_per_call.append(m["frames"] / m["calls"])
            if m["variant"] == "on":
                spans_per_call.append(m["spans"] / m["calls"])
    median = {v: statistics.median(xs) for v, xs in per_variant.items()}
    observer = {
        v: statistics.median(
            m["observer_us_per_call"] for r in rounds for m in r if m["variant"] == v
        )
        for v in ("off", "on")
    }
    base = per_variant["baseline"]
    noise = (max(base) - min(base)) / median["baseline"] if len(base) > 1 else None
    return {
        "cpu_us_per_frame": {
            v: {
                "median": round(median[v], 2),
                "min": round(min(xs), 2),
                "rounds": [round(x, 2) for x in xs],
            }
            for v, xs in per_variant.items()
        },
        "ratio_vs_baseline": {v: ratio(median[v], median["baseline"]) for v in ("off", "on")},
        # The least disturbed round of each variant (other load only ever adds CPU time).
        "ratio_of_min_vs_baseline": {
            v: ratio(min(per_variant[v]), min(base)) for v in ("off", "on")
        },
        "extra_us_per_frame": {v: round(median[v] - median["baseline"], 2) for v in ("off", "on")},
        "baseline_spread": None if noise is None else round(noise, 3),
        "frames_per_call": round(statistics.median(frames_per_call), 1),
        # Replayed events (precise where the whole-call numbers are within noise):
        "observer_us_per_call": observer,
        "observer_us_per_frame": {
            v: round(observer[v] / statistics.median(frames_per_call), 3) for v in ("off", "on")
        },
        "spans_per_call_on": round(statistics.median(spans_per_call), 1) if spans_per_call else 0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=10, help="calls per worker (after warm-up)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--worker", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.calls, args.folder)))
        return 0
    with tempfile.TemporaryDirectory(prefix="vocalis-bench-telemetry-") as work:
        rounds = _rounds(args.rounds, args.calls, Path(work))
    result = {
        "benchmark": "telemetry per-frame cost",
        "machine": machine(),
        "rounds": args.rounds,
        "calls_per_worker": args.calls,
        **summarize(rounds),
    }
    path = write_json("telemetry", result, args.out)
    log(f"wrote {path}")
    print(json.dumps({k: result[k] for k in ("ratio_vs_baseline", "observer_us_per_frame")}))
    return 0


def _rounds(count: int, calls: int, folder: Path) -> list[list[dict[str, Any]]]:
    rounds = []
    for index in range(count):
        # Rotate the order each round: no variant always runs first (or last).
        order = VARIANTS[index % 3 :] + VARIANTS[: index % 3]
        measured = [_run_worker(v, calls, folder) for v in order]
        log(f"round {index + 1}/{count}: " + ", ".join(
            f"{m['variant']} {m['cpu_s'] * 1e6 / m['frames']:.1f} µs/frame" for m in measured
        ))  # fmt: skip
        rounds.append(measured)
    return rounds


if __name__ == "__main__":
    raise SystemExit(main())
