"""Smoke: every benchmark runs end to end at a minimal size, so `make bench` cannot rot.

No timing assertions (timings are benchmark output, never pass/fail): each benchmark ran its
traffic, produced the fields the report needs, and its figures hang together — the relations
between fields hold and each figure is in a range only a unit or denominator error leaves
(not a speed threshold: a slow machine stays far inside it).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest
from bench.common import write_json
from bench.report import write_summary
from density_support import TINY, check_point

from bench import bargein, density, growth

pytestmark = pytest.mark.timeout(180)


@pytest.mark.parametrize("mode", ["vocalis", "bare", "bare-picows"])
async def test_density_point_runs(mode: str, tmp_path: Path) -> None:
    point = await density.run_point(mode, 2, 1, TINY, tmp_path, instrument=True)
    check_point(point, 2)
    density.marginals([point])


async def test_bargein_truncation_and_latency(tmp_path: Path) -> None:
    truncation, latency = await bargein.run(tmp_path, sessions=1, trials=1, quiet_wait=0.0)
    assert truncation["failed_sessions"] == []
    assert truncation["barge_ins"] == 1
    assert truncation["missing_truncate"] == 0
    assert latency["speech_started_to_sink_clear_ms"]["n"] == 1
    assert latency["first_delta_to_sink_push_ms"]["n"] >= 1


async def test_growth_and_summary(tmp_path: Path) -> None:
    result = await growth.run(tmp_path, [0.1])
    marks = result["vocalis"]["marks"]
    assert [m["minutes"] for m in marks] == [0.1]
    assert marks[0]["responses"] >= 1
    assert result["baseline_bare"]["marks"][0]["responses"] >= 1
    write_json(
        "growth",
        {
            "quick": True,
            "machine": {"cpus": 2, "cpu_model": "x", "python": "3"},
            "started": "now",
            **result,
        },
        tmp_path,
    )
    summary = write_summary(tmp_path).read_text(encoding="utf-8")
    assert "## Cost growth" in summary


async def test_continuous_load_runs_with_its_baseline(tmp_path: Path) -> None:
    from dataclasses import replace

    from bench import continuous

    timing = replace(TINY, load="continuous", spread_s=0.2)
    variants = ["vocalis:tuned", "bare", "vocalis:tuned:::task", "bare::::task"]
    result = await continuous.run([2], 1, variants, timing, tmp_path, instrument=True)
    points = {p["variant"]: p for p in result["points"]}
    assert set(points) == set(variants)
    # --instrument: every session's first message was timed from its first delta to the sink.
    assert points["vocalis:tuned"]["first_delta_to_sink_push_ms"]["n"] >= 2
    assert [points[v]["caller"] for v in variants] == ["feeder", "feeder", "task", "task"]
    for point in points.values():
        check_point(point, 2)
        # Continuous speech: every session's device played (a frame every 20 ms once audio
        # arrived); a point whose sessions never spoke has none.
        assert point["device_frames"] >= 2
        assert set(point["gc_max_pause_ms"]) == {"gen0", "gen1", "gen2"}
        assert point["gc_full_collection_ms"] >= 0
    vocalis, bare = points["vocalis:tuned"], points["bare"]
    expected = vocalis["cpu_ms_per_session_s"] / bare["cpu_ms_per_session_s"]
    assert math.isclose(vocalis["ratio_cpu_vs_bare"], expected, rel_tol=0.01)
    continuous.write_runs(result, tmp_path)
    summary = write_summary(tmp_path).read_text(encoding="utf-8")
    assert "## Density, continuous speech" in summary


async def test_continuous_load_on_a_noisy_line(tmp_path: Path) -> None:
    """The caller's line as noise (no quiet batching): same load, recorded as such."""
    from dataclasses import replace

    from bench import continuous

    timing = replace(TINY, load="continuous", spread_s=0.2, line="noise")
    result = await continuous.run([2], 1, ["vocalis:tuned", "bare"], timing, tmp_path)
    for point in result["points"]:
        assert point["line"] == "noise"
        check_point(point, 2)
        assert point["device_frames"] >= 2


async def test_hotpath_measures_run() -> None:
    from bench import hotpath

    # Each measure checks its own workload ran (sockets alive, every sink played, every frame
    # delivered, audio received) and raises otherwise; here: per-unit figures in units.
    per_frame_us = [
        await hotpath.input_path(sessions=2, rounds=20),
        await hotpath.push_path(sessions=2, rounds=20),
        await hotpath.push_path(sessions=2, rounds=20, line="noise"),
    ]
    for us in per_frame_us:  # a 20 ms frame's work: µs, never a frame's wall time or more
        assert 0 < us < 20_000
    appends = hotpath.appends_path(frames=200, reps=1)
    assert set(appends) == {"appends_silence_us_per_frame", "appends_noise_us_per_frame"}
    assert all(0 < us < 20_000 for us in appends.values())
    sink = await hotpath.sink_path(sinks=3, seconds=0.2)
    assert set(sink) == {"ms_per_sink_second", "underruns"}
    assert 0 < sink["ms_per_sink_second"] < 1000  # ms of CPU per sink-second: below 1 s
    assert isinstance(sink["underruns"], int) and sink["underruns"] >= 0
    lazy = await hotpath.sink_path(sinks=3, seconds=0.2, device=False)
    assert 0 < lazy["ms_per_sink_second"] < 1000 and lazy["underruns"] == 0
    receive_ms = await hotpath.receive_path(sessions=2, seconds=0.5)
    assert 0 < receive_ms < 1000  # CPU ms per received audio-second
    gemini_ms = await hotpath.receive_path(sessions=2, seconds=0.5, protocol="gemini")
    assert 0 < gemini_ms < 1000
    source = await hotpath.source_path(sources=3, rounds=20)
    assert set(source) == {"source_frames_us_per_frame", "source_deliver_us_per_frame"}
    assert all(0 < us < 20_000 for us in source.values())
    caller = await hotpath.caller_path(sessions=3, seconds=0.1)
    assert set(caller) == {"caller_task_us_per_frame", "caller_feeder_us_per_frame"}
    assert all(0 < us < 20_000 for us in caller.values())


def test_hotpath_gemini_measure_runs() -> None:
    """Every model turn was taken whole (checked inside the measure); per-unit figures."""
    from bench.gemini_path import gemini_receive, gemini_send

    assert 0 < gemini_receive(turns=2, reps=1) < 1_000_000  # CPU µs per received audio-second
    assert 0 < gemini_send(frames=200, reps=1) < 20_000  # CPU µs per 20 ms caller frame


async def test_hotpath_follow_measure_runs() -> None:
    """Every followed reply released exactly its text (checked inside the measure)."""
    from bench import hotpath

    us = await hotpath.follow_path(followers=3, speed=40.0)
    assert 0 < us < 1_000_000  # CPU µs per followed audio-second: below the second itself


async def test_hotpath_turnaround_measure_runs() -> None:
    """Both replies complete in full sessions; the split has a positive audio share."""
    from bench.turnaround import turnaround_path

    result = await turnaround_path(sessions=2, seconds=2.5, warmup=0.5)
    short_ms, long_ms = result["turnaround_short_audio_ms"], result["turnaround_long_audio_ms"]
    # Played in full: espeak's "Okay." is about 0.5 s, the long reply about 2 s.
    assert 200 < short_ms < 1000 < long_ms < 4000
    short_us = result["turnaround_short_us_per_response"]
    long_us = result["turnaround_long_us_per_response"]
    assert 0 < short_us < 1_000_000 and 0 < long_us < 1_000_000  # µs per response
    # The split is the line through the two replies: fixed part + audio part of each.
    per_ms, fixed = result["turnaround_audio_ms_per_audio_s"], result["turnaround_us_per_response"]
    assert math.isclose(fixed + per_ms * short_ms, short_us, rel_tol=1e-6, abs_tol=1e-3)
    assert math.isclose(fixed + per_ms * long_ms, long_us, rel_tol=1e-6, abs_tol=1e-3)
    # Tasks the agent created per response: its run and the checkpoint re-sync (no tool,
    # watchdog, playout, text or follow task; #17). The window's edges cut a response or two.
    assert 1.0 <= result["turnaround_tasks_per_response"] <= 3.5


async def test_hotpath_memory_measure_runs() -> None:
    """Sessions keep their objects and the audio sent ahead (tens to hundreds of KB each, not
    bytes or megabytes; an idle one tens of KB and a few tasks), and a settled response
    leaves nothing for the cyclic collector (a response caught in a cycle leaves ~100
    objects)."""
    from bench.session_memory import session_memory

    result = await session_memory(sessions=2, seconds=5.0, warmup=1.0)
    mean, peak = result["memory_kb_per_session_mean"], result["memory_kb_per_session_max"]
    assert 20 < mean <= peak < 5_000  # KB per session
    assert 10 < result["memory_kb_per_idle_session"] < 1_000
    assert 1 <= result["memory_tasks_per_idle_session"] < 50
    assert result["memory_cyclic_objects_per_response"] < 5
    # The split by block size, vocalis and the wire-only client: both hold the audio ahead
    # in large blocks; vocalis' own state is small objects, more than the bare client's.
    for kind in ("", "bare_"):
        assert 1 < result[f"memory_{kind}large_kb_per_session"] < 5_000
    assert 1 < result["memory_bare_small_kb_per_session"] < result["memory_small_kb_per_session"]


async def test_caller_feeder_hands_every_session_its_frames_in_order() -> None:
    """One timer feeds every session consecutive frames of its own offset, none skipped."""
    import asyncio

    frames = list(range(7))
    got: list[list[int]] = [[], [], []]
    done = asyncio.Event()

    def feed_to(i: int) -> Callable[[int], None]:
        def feed(frame: int) -> None:
            got[i].append(frame)
            if len(got[-1]) >= 12:
                done.set()

        return feed

    feeder = density.CallerFeeder([feed_to(i) for i in range(3)], frames, [0, 3, 6], 0.002)
    feeder.start()
    await done.wait()
    feeder.stop()
    for offset, seen in zip([0, 3, 6], got, strict=True):
        assert seen[:12] == [(offset + k) % 7 for k in range(12)]
    assert len(got[0]) == len(got[1]) == len(got[2])  # session order within each frame time


async def test_stall_watch_names_what_blocked_the_loop() -> None:
    """A callback that holds the loop shows up as a stall whose stacks name it.

    Deterministic: the watch reads a clock the test moves, and the loop is held until the
    watchdog has sampled it (no fixed sleep decides whether the stall is seen)."""
    import asyncio
    import threading

    from bench.stalls import StallWatch

    now = [100.0]
    sampled = threading.Event()
    watch = StallWatch(clock=lambda: now[0], on_sample=sampled.set)

    def hold_the_loop() -> None:
        now[0] += 0.150  # 150 ms without a beat on the watch's clock
        assert sampled.wait(30.0), "the watchdog never sampled the held loop"

    watch.start()
    response_done = now[0]  # a mark just before the stall
    hold_the_loop()
    async with asyncio.timeout(30.0):  # the loop beats again: the watch closes the stall
        while not watch.stalls:  # noqa: ASYNC110 - state owned by the watchdog thread
            await asyncio.sleep(0.001)
    stalls = watch.stop(marks=[response_done, response_done - 2.0])
    assert len(stalls) == 1, stalls
    [stall] = stalls
    assert stall["wall_ms"] == 145.0  # 150 ms late, less the one beat (5 ms) it was due in
    assert stall["at_s"] == 0.0 and stall["marks_1s_before"] == 1
    assert stall["samples"] >= 1
    # Sampled while held (samples after it, before the next beat, show the loop's own code).
    assert any("hold_the_loop" in f for st in stall["stacks"] for f in st["stack"])


async def test_input_chunk_measures_turns_with_quiet_batching_off_and_on() -> None:
    from bench import input_chunk

    result = await input_chunk.run([40], turns=1, quiet=[0, 200])
    rows = result["rows"]
    assert [row["quiet_input_chunk_ms"] for row in rows] == [0, 200]
    for row in rows:  # the sim's VAD saw the turn start and end either way
        assert row["speech_started_ms"]["n"] == 1 and row["speech_stopped_ms"]["n"] == 1
