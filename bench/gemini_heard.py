"""``python -m bench.gemini_heard``: what keeping the heard contract costs on Gemini Live.

Gemini cannot truncate; after a barge-in the client either re-seeds a fresh session with the
heard history (``reseed``), appends a correction note (``correction``), does both (the note
now, the re-seed once the answer settled: ``correct_then_reseed``; its re-seed happens after
what is measured here) or does nothing (``none``, the baseline other frameworks ship). Each
trial, against the embedded Gemini sim (same process, real sockets, caller audio streamed in
real time):

1. the caller asks; the model answers a long sentence, generated ``--pace`` x real time;
2. ``--heard-ms`` into the playback (wall clock) the caller barges in ("Wait, stop.", ~1 s,
   then silence); at the ``interrupted`` message the client gets the heard history
   (``sync_history``), as the runtime does when the interrupted turn settles;
3. measured: how long the heard checkpoint took (for ``reseed``: open + setup + seed), the
   **next-turn latency** (the caller's voice end + the service's 500 ms end-of-turn silence
   window -> first audio of the answer received), the answer's prompt tokens (the sim's
   usageMetadata), and the connections used.

Writes ``bench/results/gemini_heard.json`` with medians per strategy and the ratios to
``none`` measured in the same run. Timing-sensitive: run under ``flock /work/team/bench.lock``
on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

import numpy as np

from bench.common import log, machine, ratio, write_json
from vocalis.audio.espeak import synthesize
from vocalis.conversation.heard import heard_prefix
from vocalis.conversation.items import MessageItem
from vocalis.providers.base import GenerationStarted, SessionOptions
from vocalis.providers.gemini import GeminiRealtimeModel, GeminiRealtimeSession, HeardStrategy
from vocalis.sim.gemini import DIALECT, sessions_of
from vocalis.sim.server import SimServer

QUESTION = "What is the weather in Paris?"
ANSWER = (
    "The weather in Paris is sunny and warm today, with a light breeze from the west in the "
    "afternoon, clear skies tonight and a cooler morning tomorrow."
)
BARGE_IN = "Wait, stop."
REPLY = "Sure, go ahead."
FRAME = 320  # 20 ms at 16 kHz
END_OF_TURN_MS = 500  # the Gemini sim's default silenceDurationMs


def _scenario(connect_delay_s: float) -> dict[str, Any]:
    return {
        "server": {"on_connect_delay_s": connect_delay_s},
        "responses": [
            {"user_transcript": QUESTION, "say": ANSWER},
            {"user_transcript": BARGE_IN, "say": REPLY},
        ],
    }


def _speech(text: str, silence_ms: int) -> np.ndarray:
    clip = synthesize(text, sample_rate=16000)
    tail = np.zeros(16 * silence_ms, dtype=np.int16)
    return np.concatenate([np.asarray(clip.samples, dtype=np.int16), tail])


async def _stream(session: GeminiRealtimeSession, samples: np.ndarray) -> float:
    """Send in real time (20 ms frames); returns the perf_counter time the first went out."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    first_sent = time.perf_counter()
    for n, at in enumerate(range(0, len(samples), FRAME)):
        session.append_audio(samples[at : at + FRAME])
        await asyncio.sleep(max(0.0, start + (n + 1) * 0.02 - loop.time()))
    return first_sent


def _voice_end_s(samples: np.ndarray) -> float:
    """Where the caller's voice ends in ``samples`` (last sample louder than -36 dBFS)."""
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > 500)
    return float(loud[-1] + 1) / 16000.0 if loud.size else 0.0


async def _generations(session: GeminiRealtimeSession, out: asyncio.Queue[Any]) -> None:
    async for event in session.events():
        if isinstance(event, GenerationStarted):
            out.put_nowait(event.generation)


async def _first_audio(generation: Any) -> tuple[float, Any]:
    message = await generation.messages.recv()
    await message.audio.recv()
    return time.perf_counter(), message


async def trial(
    strategy: HeardStrategy, pace: float, heard_ms: float, connect_delay_s: float, barge_in: str
) -> dict[str, Any]:
    scenario = _scenario(connect_delay_s)
    async with SimServer(scenario=scenario, pace=pace, dialects=[DIALECT]) as server:
        model = GeminiRealtimeModel(
            api_key="bench", base_url=server.base_url, heard_strategy=strategy
        )
        session = await model.connect(SessionOptions(instructions="Be brief."))
        gens: asyncio.Queue[Any] = asyncio.Queue()
        pump = asyncio.create_task(_generations(session, gens))
        await _stream(session, _speech(QUESTION, 700))
        answer = await gens.get()
        started, message = await _first_audio(answer)
        await asyncio.sleep(max(0.0, heard_ms / 1000.0 - (time.perf_counter() - started)))
        # The speech, then exactly the sim's end-of-turn silence window: the last frame of
        # this stream is where the service decides the caller's turn is over.
        barge_audio = _speech(barge_in, END_OF_TURN_MS)
        barge = asyncio.create_task(_stream(session, barge_audio))
        await answer.done  # `interrupted`: the model stopped
        heard = heard_prefix(message.text_received, heard_ms, message.audio_received_ms)
        items = [
            MessageItem(session.protocol.server_record[0].item_id, "user", QUESTION),
            MessageItem(message.item_id, "assistant", heard, interrupted=True, played_ms=heard_ms),
        ]
        t0 = time.perf_counter()
        await session.sync_history(items)
        checkpoint_s = time.perf_counter() - t0
        # The moment the service can decide the turn ended: voice end + its silence window.
        turn_sent = await barge + _voice_end_s(barge_audio) + END_OF_TURN_MS / 1000.0
        tail = asyncio.create_task(_stream(session, np.zeros(16 * 1000, dtype=np.int16)))
        reply = await gens.get()
        first, _ = await _first_audio(reply)
        serving = sessions_of(server).connections[-1].session
        await asyncio.wait_for(_until(lambda: bool(serving.usage)), 10)
        usage = serving.usage[-1]
        result = {
            "checkpoint_s": checkpoint_s,
            "next_turn_latency_s": first - turn_sent,
            "answer_prompt_tokens": usage.prompt,
            "answer_prompt_text_tokens": usage.prompt_text,
            "connections": len(sessions_of(server).connections),
            "service_remembers_unheard": any(
                t.role == "model" and ANSWER.startswith(t.text) and len(t.text) > len(heard)
                for t in serving.history.turns
            ),
        }
        tail.cancel()
        pump.cancel()
        await session.aclose()
        return result


async def _until(predicate: Any) -> None:
    while not predicate():  # noqa: ASYNC110 - polls the sim's state in the same loop
        await asyncio.sleep(0.01)


def _median(rows: list[dict[str, Any]], key: str) -> float:
    return round(statistics.median(float(r[key]) for r in rows), 4)


async def measure(
    repeat: int, pace: float, heard_ms: float, connect_delay_s: float, barge_in: str
) -> dict[str, Any]:
    strategies = (
        HeardStrategy.NONE,
        HeardStrategy.CORRECTION,
        HeardStrategy.RESEED,
        HeardStrategy.CORRECT_THEN_RESEED,
    )
    rows: dict[str, list[dict[str, Any]]] = {s.value: [] for s in strategies}
    for n in range(repeat):
        for strategy in strategies:  # interleaved, so machine load hits all alike
            row = await trial(strategy, pace, heard_ms, connect_delay_s, barge_in)
            rows[strategy.value].append(row)
            log(f"trial {n + 1}/{repeat} {strategy.value}: {rows[strategy.value][-1]}")
    summary: dict[str, Any] = {}
    base = rows["none"]
    for name, runs in rows.items():
        latency = _median(runs, "next_turn_latency_s")
        tokens = _median(runs, "answer_prompt_tokens")
        summary[name] = {
            "checkpoint_s_p50": _median(runs, "checkpoint_s"),
            "next_turn_latency_s_p50": latency,
            "added_latency_s_p50": round(latency - _median(base, "next_turn_latency_s"), 4),
            "latency_ratio_vs_none": ratio(latency, _median(base, "next_turn_latency_s")),
            "answer_prompt_tokens_p50": tokens,
            "extra_prompt_tokens_p50": round(tokens - _median(base, "answer_prompt_tokens"), 1),
            "connections_p50": _median(runs, "connections"),
            "service_remembers_unheard": all(r["service_remembers_unheard"] for r in runs),
        }
    return {"summary": summary, "trials": rows}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--pace", type=float, default=4.0, help="sim generation speed")
    parser.add_argument("--heard-ms", type=float, default=1500.0)
    parser.add_argument(
        "--connect-delay-ms",
        type=float,
        default=300.0,
        help="the sim answers setup this much later (a real service's handshake + setup)",
    )
    parser.add_argument("--barge-in", default=BARGE_IN, help="what the caller says")
    parser.add_argument("--name", default="gemini_heard", help="results file name (no .json)")
    args = parser.parse_args(argv)
    delay_s = args.connect_delay_ms / 1000.0
    result = asyncio.run(measure(args.repeat, args.pace, args.heard_ms, delay_s, args.barge_in))
    result["config"] = {
        "repeat": args.repeat,
        "pace": args.pace,
        "heard_ms": args.heard_ms,
        "connect_delay_ms": args.connect_delay_ms,
        "barge_in": args.barge_in,
    }
    result["machine"] = machine()
    path = write_json(args.name, result)
    log(f"wrote {path}")
    for name, row in result["summary"].items():
        log(f"{name:>10}: {row}")


if __name__ == "__main__":
    main()
