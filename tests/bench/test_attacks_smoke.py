"""Smoke: the empty-items attacks of `bench/attacks.py` run end to end at a minimal size.

No RSS assertion (memory is benchmark output): only that both calls ran, the flood reached
the call's history and the report has the fields docs/reliability.md quotes.
"""

from __future__ import annotations

import pytest
from bench.attacks import empty_items_flood
from bench.common import REPO

pytestmark = pytest.mark.timeout(180)


@pytest.mark.parametrize("attack", ["empty-items", "gemini-empty-items"])
async def test_the_empty_items_attack_runs(attack: str) -> None:
    result = await empty_items_flood(REPO / "src", attack, items=40, caller_s=1.0)
    assert result["items_sent"] == 40
    assert result["idle_peak_rss_mb"] and result["peak_rss_mb"]
    assert result["history_items"]  # the items reached the call
    if attack == "empty-items":  # (Gemini's attacker floods again on each re-seed connection)
        assert result["ended_item_budget"] is False  # 40 is far below the bound
