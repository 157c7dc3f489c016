"""`settle_heap`: the start-up heap leaves the collector's walks, young collections get rarer."""

from __future__ import annotations

import gc

from vocalis.utils.gc_tuning import GC_THRESHOLDS, settle_heap


def test_settle_heap_freezes_the_live_heap_and_sets_thresholds() -> None:
    before = gc.get_threshold()
    try:
        # a tracked object alive at settle time
        alive: object = object.__new__(type("Alive", (), {}))
        settle_heap()
        assert gc.get_threshold() == GC_THRESHOLDS
        assert gc.get_freeze_count() > 0
        assert not any(o is alive for o in gc.get_objects())  # frozen: not walked any more
        later = [alive]  # created after: tracked as usual
        assert any(o is later for o in gc.get_objects())
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
