"""The pool's shared admission table, without servers (restarts: test_supervisor.py).

The table is shared memory between real processes: several processes racing for the last
slots must never admit more than the limit, and a worker's death must give its slots back.
"""

from __future__ import annotations

import multiprocessing
import tempfile
from multiprocessing.synchronize import Event
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from vocalis.worker import Admission, Lease, Refusal
from vocalis.worker.fleet import FleetTable


def _race(path: str, index: int, attempts: int, limit: int, start: Event) -> None:
    table = FleetTable.open(Path(path))
    admission = Admission(limit, table.slot(index))
    start.wait()
    for _ in range(attempts):
        admission.admit()  # leases are kept: the slots stay taken
    table.close()


def test_processes_racing_for_slots_never_exceed_the_limit(tmp_path: Path) -> None:
    workers, attempts, limit = 4, 40, 57
    table = FleetTable.create(tmp_path / "admission", workers)
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    racers = [
        context.Process(target=_race, args=(str(table.path), i, attempts, limit, start))
        for i in range(workers)
    ]
    for racer in racers:
        racer.start()
    start.set()
    for racer in racers:
        racer.join(120)
        assert racer.exitcode == 0
    totals = table.totals()
    assert totals.live == totals.accepted == limit
    assert totals.refused["at_capacity"] == workers * attempts - limit
    assert sum(totals.live_by_worker) == limit


def test_a_dead_workers_calls_leave_the_count(tmp_path: Path) -> None:
    table = FleetTable.create(tmp_path / "admission", 2)
    first, second = Admission(2, table.slot(0)), Admission(2, table.slot(1))
    assert isinstance(first.admit(), Lease) and isinstance(first.admit(), Lease)
    refusal = second.admit()
    assert isinstance(refusal, Refusal) and refusal.reason == "at_capacity"
    assert "(2/2 calls)" in refusal.message
    assert not second.accepting
    assert table.worker_ended(0) == 2  # worker 0 died holding two calls
    assert second.accepting and isinstance(second.admit(), Lease)
    totals = table.totals()
    assert (totals.live, totals.accepted, totals.finished) == (1, 3, 2)


def test_call_numbers_are_unique_across_processes(tmp_path: Path) -> None:
    table = FleetTable.create(tmp_path / "admission", 2)
    other = FleetTable.open(table.path)
    numbers = [table.next_call_number(), other.next_call_number(), table.next_call_number()]
    assert numbers == [1, 2, 3]


@given(st.lists(st.tuples(st.integers(0, 2), st.booleans()), max_size=60), st.integers(1, 5))
def test_admission_over_a_table_matches_one_process(
    steps: list[tuple[int, bool]], limit: int
) -> None:
    """Three workers sharing a table admit exactly what one process with the limit would."""
    with tempfile.TemporaryDirectory() as folder:
        table = FleetTable.create(Path(folder) / "admission", 3)
        workers = [Admission(limit, table.slot(i)) for i in range(3)]
        alone = Admission(limit)
        leases: list[tuple[Lease, Lease]] = []
        for index, admit in steps:
            if admit or not leases:
                shared, single = workers[index].admit(), alone.admit()
                assert isinstance(shared, Lease) == isinstance(single, Lease)
                if isinstance(shared, Lease) and isinstance(single, Lease):
                    leases.append((shared, single))
            else:
                for lease in leases.pop():
                    lease.release()
            assert table.fleet_live() == alone.live <= limit
        table.close()
