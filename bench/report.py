"""``summary.md``: the result JSONs as markdown tables, with the targets next to the numbers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

TARGETS = {
    "density": ">= 100 concurrent real-time sessions on 2 cores at lag p99 < 20 ms, 0 underruns",
    "rss": "<= 5 MB RSS per additional session",
    "push": "added latency p99 <= 1 ms",
    "clear": "interruption-to-clear p99 <= 1 frame (20 ms)",
    "truncation": "truncation error p99 <= 10 ms",
}


def _load(results: Path, name: str) -> dict[str, Any] | None:
    path = results / f"{name}.json"
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return lines


def _density(d: dict[str, Any]) -> list[str]:
    out = [
        "## Density",
        "",
        f"Criterion: {d['criterion']}. Sim pace {d['pace']}x, a two-message response every "
        f"{d['period_s']} s per session; sim server in its own process (its CPU shown, it shares "
        "the 2 cores). `sim RTT` = round trip of an immediately answered event on a probe "
        "connection (a late sim delivers audio late: underruns then start at the provider). "
        "`other` = CPU used by anything else on the machine during the window.",
        "",
    ]
    header = [
        "mode",
        "frame ms",
        "workers",
        "N",
        "lag p50 ms",
        "lag p99 ms",
        "underruns",
        "CPU ms / session-s",
        "marginal CPU",
        "vs bare",
        "RSS / session MB",
        "marginal MB",
        "agent cores",
        "sim cores",
        "sim RTT p99 ms",
        "other cores",
        "ok",
    ]
    rows = []
    for series in (
        "one_worker",
        "two_workers",
        "one_worker_40ms_frames",
        "two_workers_40ms_frames",
        "baseline_bare",
    ):
        for p in d.get(series, []):
            rows.append(
                [
                    p["mode"],
                    p.get("frame_ms", 20),
                    p["workers"],
                    p["sessions"],
                    p["lag_p50_ms"],
                    p["lag_p99_ms"],
                    p["underruns"],
                    p["cpu_ms_per_session_s"],
                    p.get("cpu_marginal_ms_per_session_s"),
                    p.get("ratio_cpu_vs_bare"),
                    p["rss_per_session_mb"],
                    p.get("rss_marginal_mb"),
                    p["agent_cpu_cores"],
                    p["sim_cpu_cores"],
                    (p.get("sim_rtt_ms") or {}).get("p99"),
                    p.get("other_cpu_cores"),
                    "yes" if p["ok"] else "no",
                ]
            )
    out += _table(header, rows)
    out += [
        "",
        f"**Largest N passing**: {d['largest_ok_one_worker']} (1 worker), "
        f"{d['largest_ok_two_workers']} (2 workers), "
        f"{d.get('largest_ok_40ms_frames', '–')} / "
        f"{d.get('largest_ok_40ms_frames_two_workers', '–')} (1 / 2 workers, 40 ms caller "
        f"frames); bare-wire baseline {d['largest_ok_bare']}. Target: {TARGETS['density']}.",
        "",
    ]
    return out


def _latency(d: dict[str, Any]) -> list[str]:
    push = d["first_delta_to_sink_push_ms"]
    clear = d["speech_started_to_sink_clear_ms"]
    bare = d["baseline_bare"]
    rows = [
        [
            "first audio delta received -> first frame handed to sink",
            d["condition"],
            push["n"],
            push["p50"],
            push["p99"],
            push["max"],
            bare["push_ms"]["p99"],
            d.get("ratio_push_p99"),
        ],
        [
            "speech_started received -> sink cleared",
            d["condition"],
            clear["n"],
            clear["p50"],
            clear["p99"],
            clear["max"],
            bare["clear_ms"]["p99"],
            d.get("ratio_clear_p99"),
        ],
    ]
    loaded = d.get("under_load")
    if loaded and loaded.get("first_delta_to_sink_push_ms"):
        lp = loaded["first_delta_to_sink_push_ms"]
        lb = loaded.get("baseline_bare_first_delta_to_queue_ms") or {}
        rows.append(
            [
                "first audio delta received -> first frame handed to sink",
                f"{loaded['condition']}, lag p99 {loaded['lag_p99_ms']} ms",
                lp["n"],
                lp["p50"],
                lp["p99"],
                lp["max"],
                lb.get("p99"),
                (round(lp["p99"] / lb["p99"], 2) if lb.get("p99") else None),
            ]
        )
    out = [
        "## Added latency",
        "",
        "Raw receive = the moment the WebSocket handed the message over, before `json.loads`.",
        "",
    ]
    out += _table(
        ["path", "condition", "n", "p50 ms", "p99 ms", "max ms", "bare p99 ms", "ratio p99"], rows
    )
    out += ["", f"Targets: {TARGETS['push']}; {TARGETS['clear']}.", ""]
    return out


def _truncation(d: dict[str, Any]) -> list[str]:
    e = d["truncation_error_ms"]
    r = d["baseline_received_bytes_error_ms"]
    w = d["baseline_wall_clock_error_ms"]
    words = d["word_errors"]
    out = [
        "## Truncation accuracy",
        "",
        f"{d['barge_ins']} randomized barge-ins ({d['sessions']} concurrent sessions, "
        f"cuts per message {d['cuts_per_message']}); |audio_end_ms sent (sim log) - audio "
        "actually played (sink frames)|.",
        "",
    ]
    out += _table(
        ["truncation point", "p50 ms", "p99 ms", "max ms"],
        [
            ["vocalis (sink playback clock)", e["p50"], e["p99"], e["max"]],
            [
                f"vocalis, without the {d.get('tail_clamped_cuts', 0)} deliberate tail clamps",
                (d.get("truncation_error_ms_without_tail_clamp") or e)["p50"],
                (d.get("truncation_error_ms_without_tail_clamp") or e)["p99"],
                (d.get("truncation_error_ms_without_tail_clamp") or e)["max"],
            ],
            ["baseline: audio received", r["p50"], r["p99"], r["max"]],
            ["baseline: wall time since item's first delta", w["p50"], w["p99"], w["max"]],
        ],
    )
    out += [
        "",
        f"Heard text vs espeak word timings (a word is heard when its middle played): word "
        f"errors p50 {words['p50']}, p99 {words['p99']}, max {words['max']}; histogram "
        f"{d['word_error_histogram']}. Never-played segments deleted: "
        f"{d['skipped_segments_deleted']}/{d['skipped_segments']}; cut items without a "
        f"truncate: {d['missing_truncate']}. Target: {TARGETS['truncation']}.",
        "",
    ]
    return out


def _growth(d: dict[str, Any]) -> list[str]:
    bare = {m["minutes"]: m for m in d["baseline_bare"]["marks"]}
    rows = []
    for m in d["vocalis"]["marks"]:
        b = bare.get(m["minutes"], {})
        rows.append(
            [
                m["minutes"],
                m["cpu_s"],
                m["cpu_ms_per_conversation_s"],
                b.get("cpu_ms_per_conversation_s"),
                m.get("ratio_cpu_vs_bare"),
                m["rss_mb"],
                m["rss_added_mb"],
                b.get("rss_added_mb"),
                m["history_items"],
                m["reconnects"],
            ]
        )
    out = ["## Cost growth with conversation length", "", d["method"] + ".", ""]
    out += _table(
        [
            "minutes",
            "CPU s (cumulative)",
            "CPU ms / conv-s (this span)",
            "bare",
            "ratio",
            "RSS MB",
            "RSS added MB",
            "bare added MB",
            "history items",
            "reconnects",
        ],
        rows,
    )
    return [*out, ""]


def _profile(d: dict[str, Any]) -> list[str]:
    out = [
        "## Profile",
        "",
        f"{d['tool']}, {d['sessions']} sessions; sampled {d['sampled_seconds']} s of which "
        f"{d['busy_seconds']} s busy (percentages are of busy time; idle epoll excluded).",
        "",
    ]
    rows = [[e["function"], e["pct"]] for e in d["top_self"][:15]]
    out += _table(["function (self time)", "% of busy"], rows)
    out += ["", "vocalis functions by total (inclusive) time:", ""]
    rows = [[e["function"], e["pct"]] for e in d.get("top_vocalis_total", [])[:15]]
    out += _table(["function (total time)", "% of busy"], rows)
    return [*out, ""]


def _continuous(d: dict[str, Any]) -> list[str]:
    run = d["runs"][-1]
    out = [
        "## Density, continuous speech",
        "",
        "Every session speaks all the time (a ~1 s and a ~9 s message back to back, the next "
        "response requested as soon as one played), 20 ms silence frames in at real time, a "
        f"device holding one 40 ms chunk (`gaps`); {run['workers']} agent process(es), the sim "
        "in its own process (its CPU shown). Pass: lag p99 < 20 ms, no gap, no underrun, no "
        f"reply cut. Run started {run['started']}.",
        "",
    ]
    header = [
        "variant",
        "N",
        "lag p99 ms",
        "lag max ms",
        "gaps",
        "underruns",
        "CPU ms / session-s",
        "vs bare",
        "MB / extra session",
        "gc full ms",
        "agent cores",
        "sim cores",
        "other cores",
        "ok",
    ]
    rows = [
        [
            p["variant"],
            p["sessions"],
            p["lag_p99_ms"],
            p["lag_max_ms"],
            p["device_gaps"],
            p["underruns"],
            p["cpu_ms_per_session_s"],
            p.get("ratio_cpu_vs_bare"),
            p.get("rss_marginal_mb", p["rss_per_session_mb"]),
            p.get("gc_full_collection_ms"),
            p["agent_cpu_cores"],
            p["sim_cpu_cores"],
            p["other_cpu_cores"],
            "yes" if p["ok"] else "no",
        ]
        for p in run["points"]
    ]
    return [*out, *_table(header, rows), ""]


def write_summary(results: Path) -> Path:
    lines = ["# vocalis benchmark summary", ""]
    meta = None
    for name, render in (
        ("density", _density),
        ("density_continuous", _continuous),
        ("latency", _latency),
        ("truncation", _truncation),
        ("growth", _growth),
        ("profile", _profile),
    ):
        data = _load(results, name)
        if data is None:
            continue
        meta = meta or (data if "machine" in data else None)
        lines += render(data)
    if meta is not None:
        m = meta["machine"]
        lines[1:1] = [
            "",
            f"Machine: {m['cpus']} CPUs ({m['cpu_model']}), Python {m['python']}; "
            f"{'quick' if meta['quick'] else 'full'} run started {meta['started']}. "
            "Reproduce: `make bench` (method: docs/performance.md).",
        ]
    path = results / "summary.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
