"""Smoke: the telemetry benchmark runs its three variants end to end at minimal size.

No timing assertions (timings are benchmark output): only that each variant ran a call,
that "on" exported spans and the others none, and that the report has its fields.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from bench import telemetry

pytestmark = pytest.mark.timeout(180)


def test_three_variants_one_round(tmp_path: Path) -> None:
    assert telemetry.main(["--rounds", "1", "--calls", "1", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "telemetry.json").read_text())
    assert set(result["cpu_us_per_frame"]) == {"baseline", "off", "on"}
    assert result["frames_per_call"] > 100
    assert result["spans_per_call_on"] >= 10
    for key in ("ratio_vs_baseline", "observer_us_per_call", "observer_us_per_frame"):
        assert set(result[key]) == {"off", "on"}
    # The per-frame cost is the per-call cost spread over a call's frames.
    for variant in ("off", "on"):
        per_call = result["observer_us_per_call"][variant]
        per_frame = per_call / result["frames_per_call"]
        assert math.isclose(
            result["observer_us_per_frame"][variant], per_frame, rel_tol=2e-3, abs_tol=1e-3
        )
    assert result["observer_us_per_call"]["on"] > 0
