"""The fleet's shared table: one admission limit and one set of counts for N worker processes.

Why a shared table and not the limit split N ways: the kernel hands each connection to
whichever worker accepts first, so calls are rarely spread evenly; with `--max-sessions 10`
split into 5 + 5, a caller would get a 503 from a full worker while its sibling has room (and
a limit below N could not be split at all). Here every worker's `admit` counts against the
fleet's total, decided under one lock: of two workers asking for the last slot at once,
exactly one gets it.

The table is a small file in the fleet's private folder, mapped into every process (shared
memory), plus `flock` on it as the lock: the kernel drops a dead process' lock, so a worker
that crashes inside the critical section cannot wedge the fleet. Each worker writes only its
own slot; when one dies the supervisor counts its calls as finished and clears its slot
before starting its replacement (which keeps the slot's counters: totals never go back).
Locked once per admission and release — per call, never per audio frame.
"""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from vocalis.worker.admission import AdmissionCounts, RefusalReason

__all__ = ["FleetPlace", "FleetSlot", "FleetTable", "FleetTotals"]

# Header cells, then one row of `_SLOT` cells per worker (all signed 64-bit integers).
_DRAINING, _NEXT_CALL, _WORKERS = 0, 1, 2
_HEADER = 4
_LIVE, _ACCEPTED, _FINISHED, _AT_CAPACITY, _DRAINING_REFUSED, _PID, _STARTS = range(7)
_SLOT = 8
_REFUSAL_CELL: dict[RefusalReason, int] = {
    "at_capacity": _AT_CAPACITY,
    "draining": _DRAINING_REFUSED,
}


@dataclass(frozen=True, slots=True)
class FleetTotals(AdmissionCounts):
    """The fleet's counts at one moment (read under the lock: consistent with each other)."""

    live_by_worker: tuple[int, ...]
    starts_by_worker: tuple[int, ...]


class FleetTable:
    """The mapped table. `create` (the supervisor) or `open` (a worker, by path)."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd = fd
        self._map = mmap.mmap(fd, os.fstat(fd).st_size)
        self._cells = memoryview(self._map).cast("q")
        self.workers = int(self._cells[_WORKERS])

    @classmethod
    def create(cls, path: Path, workers: int) -> FleetTable:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        os.ftruncate(fd, 8 * (_HEADER + _SLOT * workers))
        table = cls(path, fd)
        table._cells[_WORKERS] = table.workers = workers
        table._cells[_NEXT_CALL] = 1
        return table

    @classmethod
    def open(cls, path: Path) -> FleetTable:
        return cls(path, os.open(path, os.O_RDWR))

    @contextlib.contextmanager
    def _locked(self) -> Iterator[memoryview]:
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            yield self._cells
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _cell(self, index: int, field: int) -> int:
        if not 0 <= index < self.workers:
            raise IndexError(f"worker index {index} outside 0..{self.workers - 1}")
        return _HEADER + _SLOT * index + field

    def _sum(self, cells: memoryview, field: int) -> int:
        return sum(int(cells[_HEADER + _SLOT * i + field]) for i in range(self.workers))

    def slot(self, index: int) -> FleetSlot:
        """Worker `index`'s view: an `AdmissionBook` counting against the whole fleet."""
        self._cell(index, _LIVE)
        return FleetSlot(self, index)

    def fleet_live(self) -> int:
        with self._locked() as cells:
            return self._sum(cells, _LIVE)

    def totals(self) -> FleetTotals:
        with self._locked() as cells:
            rows = range(self.workers)
            return FleetTotals(
                live=self._sum(cells, _LIVE),
                accepted=self._sum(cells, _ACCEPTED),
                finished=self._sum(cells, _FINISHED),
                refused={reason: self._sum(cells, cell) for reason, cell in _REFUSAL_CELL.items()},
                live_by_worker=tuple(int(cells[self._cell(i, _LIVE)]) for i in rows),
                starts_by_worker=tuple(int(cells[self._cell(i, _STARTS)]) for i in rows),
                draining=bool(cells[_DRAINING]),
            )

    def next_call_number(self) -> int:
        """Call numbers unique across the fleet (log lines, `--out DIR/call-N` folders)."""
        with self._locked() as cells:
            number = int(cells[_NEXT_CALL])
            cells[_NEXT_CALL] = number + 1
            return number

    def set_draining(self) -> None:
        with self._locked() as cells:
            cells[_DRAINING] = 1

    def worker_started(self, index: int, pid: int) -> None:
        with self._locked() as cells:
            cells[self._cell(index, _PID)] = pid
            cells[self._cell(index, _STARTS)] += 1

    def worker_ended(self, index: int) -> int:
        """Worker `index` exited: its running calls ended with it (counted as finished, its
        slot free for a replacement). Returns how many calls it took down."""
        with self._locked() as cells:
            live = int(cells[self._cell(index, _LIVE)])
            cells[self._cell(index, _LIVE)] = 0
            cells[self._cell(index, _FINISHED)] += live
            cells[self._cell(index, _PID)] = 0
            return live

    def read(self, index: int, field: int) -> int:
        """One counter of worker `index` (an aligned 8-byte read: no lock needed)."""
        return int(self._cells[self._cell(index, field)])

    def add(self, index: int, field: int, amount: int) -> None:
        with self._locked() as cells:
            cells[self._cell(index, field)] += amount

    def take(self, index: int, limit: int | None) -> int | None:
        """Admission for worker `index`: counted in (None) if fewer than `limit` calls run in
        the whole pool, else the number running. One decision under the lock."""
        with self._locked() as cells:
            running = self._sum(cells, _LIVE)
            if limit is not None and running >= limit:
                return running
            cells[self._cell(index, _LIVE)] += 1
            cells[self._cell(index, _ACCEPTED)] += 1
            return None

    def give_back(self, index: int) -> None:
        with self._locked() as cells:
            cells[self._cell(index, _LIVE)] -= 1
            cells[self._cell(index, _FINISHED)] += 1

    def close(self) -> None:
        self._cells.release()
        self._map.close()
        os.close(self._fd)


class FleetSlot:
    """One worker's row of the table, as its `Admission`'s book."""

    def __init__(self, table: FleetTable, index: int) -> None:
        self.table = table
        self.index = index

    @property
    def live(self) -> int:
        return self.table.read(self.index, _LIVE)

    @property
    def fleet_live(self) -> int:
        return self.table.fleet_live()

    @property
    def accepted_total(self) -> int:
        return self.table.read(self.index, _ACCEPTED)

    @property
    def finished_total(self) -> int:
        return self.table.read(self.index, _FINISHED)

    @property
    def refused_total(self) -> dict[RefusalReason, int]:
        return {reason: self.table.read(self.index, cell) for reason, cell in _REFUSAL_CELL.items()}

    def take(self, limit: int | None) -> int | None:
        return self.table.take(self.index, limit)

    def give_back(self) -> None:
        self.table.give_back(self.index)

    def refused(self, reason: RefusalReason) -> None:
        self.table.add(self.index, _REFUSAL_CELL[reason], 1)


@dataclass(frozen=True, slots=True)
class FleetPlace:
    """Where a worker process stands in its pool: its row of the table, and the folder of
    the pool's metric files (prometheus-client's multiprocess folder)."""

    table: FleetTable
    index: int
    metrics_dir: Path
