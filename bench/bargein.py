"""Barge-ins: truncation accuracy, heard-text accuracy and the two added latencies.

K sessions run concurrently against the sim (own process, ``--log`` JSONL). Each session's
caller says a line; the server-VAD response is three spoken messages (~8.5 s). At a random
moment of the response's playback (uniform over its whole audio, so cuts land in message 1, 2
or 3) the caller speaks again: server VAD sends ``speech_started`` and cancels the response,
vocalis clears the sink and settles the ledger (truncate the partly played item, delete the
never played ones). The barge-in line is itself the next turn, so the next trial starts.

Ground truth, per trial, taken outside vocalis:

* ``audio_end_ms`` vocalis *sent*: the sim's log of client events (``conversation.item.truncate``);
* audio *actually played*: samples counted by the sink's frame callback up to the clear;
* heard text truth: the sim's own espeak word timings of that message — a word counts as heard
  when the middle of its audio played (the heard contract's rule) — against the text vocalis
  stored in its history.

Baselines for the truncation point, computed on the same trials: what a client would send if it
truncated at the audio *received* (a common shortcut) or at the wall time since the item's first
audio delta arrived (the other common shortcut).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import time
from pathlib import Path
from typing import Any

from bench.agents import BareClient, VocalisAgent
from bench.common import (
    CALLER_LINE,
    FRAME_MS,
    LONG_RESPONSE,
    caller_speech,
    frames_of,
    log,
    machine_busy_seconds,
    ratio,
    sim_process,
    stats,
    wait_quiet,
    write_scenario,
)
from vocalis.conversation.items import MessageItem

_WORD = re.compile(r"\S+")


class _Caller:
    """A caller line at real time: silence unless speech is queued."""

    def __init__(self, client: Any, speech: list[Any], silence: Any) -> None:
        self.client = client
        self.speech = speech
        self.silence = silence
        self.queue: list[Any] = []
        self.task: asyncio.Task[None] | None = None

    def say(self) -> None:
        self.queue = list(self.speech)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        frame_s = FRAME_MS / 1000.0
        start = loop.time()
        k = 0
        while True:
            delay = start + k * frame_s - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            frame = self.queue.pop(0) if self.queue else self.silence
            await self.client.feed(frame)
            k += 1


def _message_durations() -> list[float]:
    from vocalis.sim.voice import speak, voice_for

    return [
        speak(text, voice_for("marin"), "audio/pcm", 1.0, 0).duration_ms for text in LONG_RESPONSE
    ]


def _truth_word_count(text: str, played_ms: float) -> int | None:
    """Words of ``text`` whose audio (mostly) played, from the sim's espeak timings."""
    from vocalis.sim.voice import speak, voice_for

    for seed in (0,):
        words = speak(text, voice_for("marin"), "audio/pcm", 1.0, seed).words
        count = 0
        for word in words:
            if (word.start_ms + word.end_ms) / 2.0 <= played_ms:
                count += 1
            else:
                break
        return count
    return None


def _message_index(generated: str | None) -> int:
    """Which scripted message an item is (its transcript may be cut short by the barge-in)."""
    if not generated:
        return -1
    for index, text in enumerate(LONG_RESPONSE):
        if text.startswith(generated.strip()):
            return index
    return -1


async def _session_trials(
    agent: VocalisAgent, caller: _Caller, trials: int, rng: random.Random, total_ms: float
) -> list[dict[str, Any]]:
    rec = agent.recorder
    assert rec is not None
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    caller.say()
    for trial in range(trials):
        # wait for the first played frame of a new response
        new: str | None = None
        async with asyncio.timeout(30):
            while new is None:
                await asyncio.sleep(0.005)
                for seg_id, samples in rec.played_samples.items():
                    if samples and seg_id not in seen:
                        new = seg_id
                        break
        first_seen = time.perf_counter()
        clears_before = len(rec.clears)
        offset = rng.uniform(0.3, total_ms / 1000.0 - 0.4)
        await asyncio.sleep(max(0.0, offset - (time.perf_counter() - first_seen)))
        caller.say()
        async with asyncio.timeout(15):
            while len(rec.clears) == clears_before:  # noqa: ASYNC110 (bench-side polling)
                await asyncio.sleep(0.005)
        seen.update(rec.played_samples)
        for snap in rec.clears[clears_before:]:
            seen.update(snap.segments)
        out.append({"trial": trial, "offset_s": round(offset, 3)})
    await asyncio.sleep(1.5)  # let the last ledger ops reach the server
    return out


def _read_log(path: Path) -> tuple[dict[str, int], set[str]]:
    truncates: dict[str, int] = {}
    deletes: set[str] = set()
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if '"conversation.item.' not in line:
                continue
            record = json.loads(line)
            if record.get("dir") != "in":
                continue
            event = record["event"]
            if event.get("type") == "conversation.item.truncate":
                truncates[event["item_id"]] = event["audio_end_ms"]
            elif event.get("type") == "conversation.item.delete":
                deletes.add(event["item_id"])
    return truncates, deletes


def _history_text(agent: VocalisAgent) -> dict[str, MessageItem]:
    assert agent.session is not None
    return {
        item.id: item
        for item in agent.session.history
        if isinstance(item, MessageItem) and item.role == "assistant"
    }


async def _bare_latency(base_url: str, sessions: int, trials: int, seed: int) -> dict[str, Any]:
    """The same barge-in traffic through `BareClient`: the latency floor of the wire path."""
    rng = random.Random(seed)
    speech = frames_of(caller_speech(CALLER_LINE))
    silence = speech[0] * 0
    total_ms = sum(_message_durations())
    clients = [BareClient() for _ in range(sessions)]
    await asyncio.gather(*(c.start(base_url) for c in clients))
    callers = [_Caller(c, speech, silence) for c in clients]
    for c in callers:
        c.task = asyncio.create_task(c.run())

    async def drive(client: BareClient, caller: _Caller) -> None:
        caller.say()
        for _ in range(trials):
            before = len(client.clear_latency_ms)
            async with asyncio.timeout(30):
                while not client._playing:  # noqa: ASYNC110
                    await asyncio.sleep(0.005)
            await asyncio.sleep(rng.uniform(0.3, total_ms / 1000.0 - 0.4))
            caller.say()
            async with asyncio.timeout(15):
                while len(client.clear_latency_ms) == before:  # noqa: ASYNC110
                    await asyncio.sleep(0.005)

    results = await asyncio.gather(
        *(drive(c, k) for c, k in zip(clients, callers, strict=True)), return_exceptions=True
    )
    for c in callers:
        assert c.task is not None
        c.task.cancel()
    await asyncio.gather(*(c.aclose() for c in clients), return_exceptions=True)
    push = [x for c in clients for x in c.push_latency_ms]
    clear = [x for c in clients for x in c.clear_latency_ms]
    return {
        "sessions": sessions,
        "failed": sum(1 for r in results if isinstance(r, BaseException)),
        "push_ms": stats(push, digits=4),
        "clear_ms": stats(clear, digits=4),
    }


async def run(
    scratch: Path,
    *,
    sessions: int,
    trials: int,
    pace: float = 2.0,
    seed: int = 7,
    quiet_wait: float = 30.0,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Returns (truncation report, latency report)."""
    rng = random.Random(seed)
    durations = _message_durations()
    total_ms = sum(durations)
    scenario = write_scenario(
        scratch / "bargein_scenario.json", [list(LONG_RESPONSE)], repeat=trials + 3
    )
    sim_log = scratch / "bargein_sim.jsonl"
    sim_log.unlink(missing_ok=True)
    speech = frames_of(caller_speech(CALLER_LINE))
    silence = speech[0] * 0
    waited = await wait_quiet(max_wait=quiet_wait)
    started = time.perf_counter()
    busy0 = machine_busy_seconds()
    own0 = time.process_time()
    async with sim_process(scenario, pace=pace, log=sim_log) as sim:
        agents = [VocalisAgent(instrument=True) for _ in range(sessions)]
        await asyncio.gather(*(a.start(sim.base_url) for a in agents))
        callers = [_Caller(a, speech, silence) for a in agents]
        for c in callers:
            c.task = asyncio.create_task(c.run())
        per_session = await asyncio.gather(
            *(
                _session_trials(a, c, trials, random.Random(rng.random()), total_ms)
                for a, c in zip(agents, callers, strict=True)
            ),
            return_exceptions=True,
        )
        for c in callers:
            assert c.task is not None
            c.task.cancel()
        histories = [_history_text(a) for a in agents]
        recorders = [a.recorder for a in agents]
        with contextlib.suppress(Exception):
            async with asyncio.timeout(20):
                await asyncio.gather(*(a.aclose() for a in agents), return_exceptions=True)
        vocalis_elapsed = time.perf_counter() - started
        own_cpu = time.process_time() - own0
        sim_cpu = sim.cpu_seconds()
        other = (machine_busy_seconds() - busy0 - own_cpu - sim_cpu) / vocalis_elapsed
        bare = await _bare_latency(sim.base_url, sessions, max(1, trials // 2), seed + 1)
    elapsed = time.perf_counter() - started
    failed_sessions = [repr(r)[:200] for r in per_session if isinstance(r, BaseException)]
    truncates, deletes = _read_log(sim_log)

    errors: list[float] = []
    errors_unclamped: list[float] = []
    tail_clamped = 0
    naive_received: list[float] = []
    naive_wall: list[float] = []
    word_errors: list[int] = []
    cut_in_message: dict[int, int] = {}
    skipped_total = 0
    skipped_deleted = 0
    missing_truncate = 0
    samples: list[dict[str, Any]] = []
    outliers: list[dict[str, Any]] = []
    word_outliers: list[dict[str, Any]] = []
    for rec, history in zip(recorders, histories, strict=True):
        assert rec is not None
        for snap in rec.clears:
            if not snap.segments:
                continue
            for seg_id, (played, received, first_delta) in snap.segments.items():
                if played <= 0:
                    skipped_total += 1
                    skipped_deleted += seg_id in deletes
                    continue
                if played >= received - 0.01:
                    continue  # fully played, resolved at the same tick: not a cut
                sent = truncates.get(seg_id)
                if sent is None:
                    missing_truncate += 1
                    continue
                err = abs(sent - played)
                errors.append(err)
                # The OpenAI client deliberately rounds a cut in the last < 50 ms of an item
                # whose audio fully arrived down to the server's 50 ms audio step (P5/P6).
                if sent < played and sent % 50 == 0 and received - sent < 50:
                    tail_clamped += 1
                else:
                    errors_unclamped.append(err)
                if err > 1.0 and len(outliers) < 10:
                    item = history.get(seg_id)
                    outliers.append(
                        {
                            "item_id": seg_id,
                            "played_ms_at_clear": round(played, 2),
                            "audio_end_ms_sent": sent,
                            "received_ms_at_clear": round(received, 1),
                            "history_played_ms": item.played_ms if item is not None else None,
                            "history_interrupted": item.interrupted if item is not None else None,
                            "clear_after_speech_started_ms": (
                                round((snap.at - snap.speech_started_at) * 1000.0, 2)
                                if snap.speech_started_at is not None
                                else None
                            ),
                            "segments_at_clear": len(snap.segments),
                        }
                    )
                naive_received.append(abs(received - played))
                if first_delta is not None:
                    naive_wall.append(abs((snap.at - first_delta) * 1000.0 - played))
                item = history.get(seg_id)
                text_index = _message_index(item.generated_text if item is not None else None)
                if item is not None and text_index >= 0:
                    cut_in_message[text_index + 1] = cut_in_message.get(text_index + 1, 0) + 1
                    truth = _truth_word_count(LONG_RESPONSE[text_index], played)
                    heard = len(_WORD.findall(item.text))
                    if truth is not None:
                        word_errors.append(abs(heard - truth))
                        if abs(heard - truth) >= 2 and len(word_outliers) < 10:
                            word_outliers.append(
                                {
                                    "message": text_index + 1,
                                    "played_ms": round(played, 2),
                                    "heard_text": item.text,
                                    "heard_words": heard,
                                    "truth_words": truth,
                                }
                            )
                    if len(samples) < 12:
                        samples.append(
                            {
                                "message": text_index + 1,
                                "played_ms": round(played, 2),
                                "audio_end_ms_sent": sent,
                                "received_ms": round(received, 1),
                                "heard_text": item.text,
                                "truth_words": truth,
                            }
                        )
    push = [x for rec in recorders if rec is not None for x in rec.latency_push_ms()]
    clear = [x for rec in recorders if rec is not None for x in rec.latency_clear_ms()]
    err_stats = stats(errors)
    word_hist = {str(k): word_errors.count(k) for k in sorted(set(word_errors))}
    truncation = {
        "sessions": sessions,
        "trials_requested": sessions * trials,
        "barge_ins": len(errors),
        "failed_sessions": failed_sessions,
        "pace": pace,
        "elapsed_s": round(elapsed, 1),
        "waited_for_quiet_s": waited,
        "other_cpu_cores": round(max(0.0, other), 3),
        "cuts_per_message": {str(k): v for k, v in sorted(cut_in_message.items())},
        "truncation_error_ms": err_stats,
        "tail_clamped_cuts": tail_clamped,
        "truncation_error_ms_without_tail_clamp": stats(errors_unclamped),
        "missing_truncate": missing_truncate,
        "skipped_segments": skipped_total,
        "skipped_segments_deleted": skipped_deleted,
        "word_errors": stats(word_errors, digits=2),
        "word_error_histogram": word_hist,
        "baseline_received_bytes_error_ms": stats(naive_received),
        "baseline_wall_clock_error_ms": stats(naive_wall),
        # vocalis' error is often exactly 0: compare against one sample (1/24 ms) then.
        "ratio_p99_received_over_vocalis": ratio(
            float(stats(naive_received)["p99"]), max(float(err_stats["p99"]), 1 / 24)
        ),
        "outliers_over_1ms": outliers,
        "word_error_outliers": word_outliers,
        "examples": samples,
    }
    push_stats = stats(push, digits=4)
    clear_stats = stats(clear, digits=4)
    latency = {
        "sessions": sessions,
        "other_cpu_cores": round(max(0.0, other), 3),
        "condition": f"{sessions} concurrent barge-in sessions (light load)",
        "first_delta_to_sink_push_ms": push_stats,
        "speech_started_to_sink_clear_ms": clear_stats,
        "baseline_bare": bare,
        "ratio_push_p99": ratio(float(push_stats["p99"]), float(bare["push_ms"]["p99"])),
        "ratio_clear_p99": ratio(float(clear_stats["p99"]), float(bare["clear_ms"]["p99"])),
    }
    log(
        f"barge-in: {len(errors)} cuts, truncation error p50/p99/max "
        f"{err_stats['p50']}/{err_stats['p99']}/{err_stats['max']} ms, word errors {word_hist}; "
        f"push p99 {push_stats['p99']} ms, clear p99 {clear_stats['p99']} ms"
    )
    return truncation, latency
