"""CPU accounting from /proc: how much each side of a run (the app, PostgreSQL, Redis, wrk) used.

Requests per second depend on everything else the machine is doing; CPU milliseconds per request do
much less, and they say where a request's cost lies. What the rest of the machine used during a run
is reported too, so a figure measured on a busy machine can be recognised as such.
"""

from __future__ import annotations

import os
import resource
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def process_seconds(pid: int) -> float:
    """User + system CPU seconds of one process so far (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def children(pid: int) -> list[int]:
    """The direct children of `pid` (uvicorn's worker processes, for its master)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        return [int(child) for child in path.read_text().split()]
    except FileNotFoundError:
        return []


def machine_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, over all cores."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # guest time is already counted in user
    return (total - idle) / TICKS, total / TICKS


def children_seconds() -> float:
    """CPU seconds of this process's finished children (wrk runs), so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True)
class Snapshot:
    app: dict[int, float]
    database: dict[int, float]
    redis: float
    wrk: float
    busy: float
    total: float


@dataclass(frozen=True)
class Usage:
    """CPU seconds each side used between two snapshots, and the machine's own figures."""

    app: float
    database: float
    redis: float
    wrk: float
    busy: float
    total: float

    @property
    def others(self) -> float:
        """CPU seconds used by everything else on the machine (other people's builds and tests...)."""
        return max(0.0, self.busy - self.app - self.database - self.redis - self.wrk)

    def others_share(self) -> float:
        """What everything else took, as a share of all the machine's cores."""
        return self.others / self.total if self.total else 0.0


def snapshot(app_pids: list[int], database_pids: list[int], redis_pid: int | None) -> Snapshot:
    """The CPU used so far by each side."""
    busy, total = machine_seconds()
    return Snapshot(
        app={pid: process_seconds(pid) for pid in app_pids},
        database={pid: process_seconds(pid) for pid in database_pids},
        redis=process_seconds(redis_pid) if redis_pid else 0.0,
        wrk=children_seconds(),
        busy=busy,
        total=total,
    )


def _grown(before: dict[int, float], after: dict[int, float]) -> float:
    # A process that ended in between reads 0 afterwards: count nothing for it rather than less.
    return sum(max(0.0, seconds - before.get(pid, 0.0)) for pid, seconds in after.items())


def used(before: Snapshot, after: Snapshot) -> Usage:
    """What each side used between `before` and `after` (take both for the same processes)."""
    return Usage(
        app=_grown(before.app, after.app),
        database=_grown(before.database, after.database),
        redis=after.redis - before.redis,
        wrk=after.wrk - before.wrk,
        busy=after.busy - before.busy,
        total=after.total - before.total,
    )


@dataclass
class Watch:
    """CPU seconds each side used during a phase; a background thread samples every second, so
    database backends that the pool closes before the end still count."""

    sides: dict[str, Callable[[], list[int]]]
    _before: dict[str, dict[int, float]] = field(default_factory=dict)
    _latest: dict[str, dict[int, float]] = field(default_factory=dict)
    _machine: tuple[float, float] = (0.0, 0.0)
    _stop: threading.Event = field(default_factory=threading.Event)

    def _read(self) -> dict[str, dict[int, float]]:
        return {name: {pid: process_seconds(pid) for pid in pids()} for name, pids in self.sides.items()}

    def _sample(self) -> None:
        for name, pids in self._read().items():
            latest = self._latest.setdefault(name, {})
            for pid, seconds in pids.items():
                latest[pid] = max(seconds, latest.get(pid, 0.0))

    @contextmanager
    def phase(self) -> Iterator[dict[str, float]]:
        """Measure the block; the dict it yields holds the figures once the block has ended."""
        used: dict[str, float] = {}
        self._before = self._read()
        self._latest = {name: dict(pids) for name, pids in self._before.items()}
        self._machine = machine_seconds()
        self._stop.clear()
        sampler = threading.Thread(target=self._run, name="cpu-watch", daemon=True)
        sampler.start()
        try:
            yield used
        finally:
            self._stop.set()
            sampler.join()
            self._sample()
            busy, total = machine_seconds()
            for name, latest in self._latest.items():
                used[name] = sum(max(0.0, s - self._before[name].get(pid, 0.0)) for pid, s in latest.items())
            used["machine busy"] = busy - self._machine[0]
            used["machine total"] = total - self._machine[1]
            ours = sum(value for key, value in used.items() if not key.startswith("machine"))
            used["others"] = max(0.0, used["machine busy"] - ours)

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self._sample()
