"""Ids in the real API's shape: ``prefix_`` + 13 stem + 8 counter characters (base 62)."""

from __future__ import annotations

import re

from vocalis.sim.ids import IdFactory

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def test_ids_are_api_shaped_unique_and_count_in_base62() -> None:
    ids = IdFactory("seed")
    minted = [ids.event() for _ in range(4000)]  # past 62 and 62**2: carries into new digits
    assert all(re.fullmatch(r"event_[0-9A-Za-z]{21}", i) for i in minted)
    assert len(set(minted)) == len(minted)
    assert len({i[6:19] for i in minted}) == 1  # one stem per factory
    for n, minted_id in enumerate(minted, start=1):
        value = 0
        for char in minted_id[-8:]:
            value = value * 62 + ALPHABET.index(char)
        assert value == n
    assert IdFactory("seed").event() == minted[0]  # deterministic for a seed
