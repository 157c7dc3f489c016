"""``python -m bench.agent_tests``: the wall time of each example agent test.

Why: `vocalis.testing` promises that a multi-turn agent test (tools, a barge-in) runs in well
under a second, because the model is the embedded sim at pace 0 and the caller's playback runs
in virtual time. That is a performance claim, so it is measured here rather than asserted in a
test (the machine is shared; a wall-clock assertion would be flaky). Each test runs
``--repeat`` times (pytest sessions in one process; the first also pays for imports and
espeak-ng's start-up, reported apart as ``first_s``).

Writes ``bench/results/agent_tests.json``: per test the setup+call+teardown seconds (first run,
median and max of the rest) against the 1 s target.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict
from typing import Any

import pytest

from bench.common import REPO, log, machine, write_json

TARGET_S = 1.0
EXAMPLES = REPO / "examples" / "testing"


class _Timer:
    """A pytest plugin collecting each test's phases (setup, call, teardown) in seconds."""

    def __init__(self) -> None:
        self.runs: dict[str, list[float]] = defaultdict(list)
        self._current: dict[str, float] = defaultdict(float)
        self.failed: list[str] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        name = report.nodeid.split("::", 1)[-1].split("[", 1)[0]
        self._current[name] += report.duration
        if report.failed:
            self.failed.append(report.nodeid)
        if report.when == "teardown":
            self.runs[name].append(self._current.pop(name))


def measure(repeat: int) -> dict[str, Any]:
    timer = _Timer()
    codes = []
    started = time.perf_counter()
    for _ in range(repeat):
        codes.append(pytest.main(["-q", "-p", "no:cacheprovider", str(EXAMPLES)], plugins=[timer]))
    total = time.perf_counter() - started
    tests = {}
    for name, runs in sorted(timer.runs.items()):
        rest = runs[1:] or runs
        tests[name] = {
            "first_s": round(runs[0], 4),
            "median_s": round(statistics.median(rest), 4),
            "max_s": round(max(rest), 4),
            "runs": len(runs),
            "under_target": max(rest) < TARGET_S,
        }
    return {
        "target_s": TARGET_S,
        "pytest_exit_codes": sorted({int(code) for code in codes}),
        "failed": timer.failed,
        "total_wall_s": round(total, 3),
        "tests": tests,
        "machine": machine(),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=5, help="runs per test (default: 5)")
    args = parser.parse_args()
    log(f"timing {EXAMPLES.relative_to(REPO)} ({args.repeat} runs per test)")
    result = measure(args.repeat)
    path = write_json("agent_tests", result)
    for name, numbers in result["tests"].items():
        mark = "ok" if numbers["under_target"] else "OVER"
        median, worst = numbers["median_s"] * 1000, numbers["max_s"] * 1000
        log(f"{name}: median {median:.0f} ms, max {worst:.0f} ms [{mark}]")
    log(f"wrote {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
