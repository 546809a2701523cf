"""(e) Group membership: how fast partitions move when workers restart, join and leave.

A steady feed runs while real `k2 ingest run` processes are killed, started and stopped;
every figure is read from the table itself (each snapshot names its writer's pid and the
partitions it covers), measured from the moment the bench acted:

- restart: kill -9 of the only worker, a new process started at once → its first commit;
- join: a second worker started into a running group → its first commit;
- handover: that worker stopped with SIGTERM → the first commit by the remaining worker of a
  partition the stopped one had committed.

Join and handover are also reported to the moment the partitions arrive (the worker's
"assigned" log line with partitions): what the group protocol does, before the worker loads
the new partitions' identities and fills its first batch of them.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from pyiceberg.catalog import Catalog

from k2.bench.environment import StackUnderTest, bootstrapped, unique_prefix
from k2.bench.preload import TradeProducer
from k2.bench.visibility import summary
from k2.bench.workers import WorkerError, WorkerProcess
from k2.catalog import load_catalog

RATE = 2_000  # records/s offered throughout: commits every max_age_s (0.5 s)
FEED_CHUNK_S = 5  # the feed is encoded and offered in slices of this many seconds
WAIT_S = 180.0  # a liveness bound per step (a loaded machine), far above the figures


class _Commits:
    """The table's snapshots as (commit time s, writer pid, partitions)."""

    def __init__(self, catalog: Catalog, identifier: tuple[str, str]) -> None:
        self._catalog = catalog
        self._identifier = identifier

    def since(self, at_s: float) -> list[tuple[float, int, set[str]]]:
        table = self._catalog.load_table(self._identifier)
        found = []
        for snapshot in table.snapshots():
            summary_ = snapshot.summary
            when = snapshot.timestamp_ms / 1000
            if summary_ is None or when < at_s:
                continue
            writer = summary_.get("k2.writer", "")
            offsets = summary_.get("k2.offsets")
            if not writer or offsets is None:
                continue
            pid = int(writer.rsplit(":", 1)[1])
            found.append((when, pid, set(json.loads(offsets))))
        return sorted(found)

    def first(
        self, at_s: float, match: Callable[[int, set[str]], bool], what: str
    ) -> tuple[float, set[str]]:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            for when, pid, partitions in self.since(at_s):
                if match(pid, partitions):
                    return when, partitions
            time.sleep(0.2)
        raise WorkerError(f"no commit within {WAIT_S:.0f}s: {what}")


def _assigned_at(log_file: Path, since_s: float) -> float:
    """Epoch seconds of the worker's first "assigned" line with partitions after `since_s`."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        for line in log_file.read_text(errors="replace").splitlines():
            if not line.startswith("{") or '"assigned"' not in line:
                continue
            entry = json.loads(line)
            when = datetime.fromisoformat(entry["ts"].replace("Z", "+00:00")).timestamp()
            if entry.get("partitions") and when >= since_s:
                return float(when)
        time.sleep(0.2)
    raise WorkerError(f"no assignment within {WAIT_S:.0f}s in {log_file}")


def _by(writer: int) -> Callable[[int, set[str]], bool]:
    return lambda pid, _partitions: pid == writer


def run(stack: StackUnderTest, logs: Path, cycles: int = 20) -> dict[str, Any]:
    """Restart, join and handover latencies (seconds) over `cycles` restarts (the issue's p99
    is over 20)."""
    endpoints = stack.endpoints
    prefix = unique_prefix("memb")
    dataset = bootstrapped(endpoints, prefix).dataset("trades")
    catalog = load_catalog(endpoints)
    commits = _Commits(catalog, dataset.table_identifier)
    producer = TradeProducer(endpoints, dataset, linger_ms=5)
    stop = threading.Event()

    def feed() -> None:
        # Fresh trades until the bench is done: a worker that joins must find records to
        # commit however long the steps before it took (a fixed feed ran dry on a loaded
        # machine, and the joining worker then had nothing to commit).
        while not stop.is_set():
            producer.paced(producer.encoded(RATE * FEED_CHUNK_S), RATE)

    feeding = threading.Thread(target=feed, daemon=True)
    feeding.start()

    def worker(name: str) -> WorkerProcess:
        return WorkerProcess(endpoints, "trades", prefix, logs / f"{prefix}{name}.log")

    first = worker("first")
    running = [first]
    try:
        started = first.started_wall
        commits.first(started, _by(first.pid), "first worker")
        restarts: list[float] = []
        for cycle in range(cycles):
            first.kill9()
            killed = time.time()
            first = worker(f"restart-{cycle}")
            running.append(first)
            when, _ = commits.first(killed, _by(first.pid), "restarted worker")
            restarts.append(when - killed)
        second = worker("second")
        running.append(second)
        joined_at = second.started_wall
        when, _ = commits.first(joined_at, _by(second.pid), "joining worker")
        join_s = when - joined_at
        join_assigned_s = _assigned_at(second.log_file, joined_at) - joined_at
        time.sleep(3)  # let the second worker commit its partitions a few times
        theirs = set().union(*(p for _w, pid, p in commits.since(joined_at) if pid == second.pid))
        stopped_at = time.time()
        second.stop()
        when, _ = commits.first(
            stopped_at, lambda pid, p: pid == first.pid and bool(p & theirs), "handover"
        )
        handover_s = when - stopped_at
        handover_assigned_s = _assigned_at(first.log_file, stopped_at) - stopped_at
        first.stop()
    finally:
        stop.set()
        feeding.join(FEED_CHUNK_S * 4)
        for proc in running:
            if proc.alive():
                proc.kill9()

    return {
        "restart_first_commit_s": summary(restarts),
        "join_first_commit_s": round(join_s, 3),
        "join_assigned_s": round(join_assigned_s, 3),
        "sigterm_handover_s": round(handover_s, 3),
        "sigterm_handover_assigned_s": round(handover_assigned_s, 3),
        "offered_rate": RATE,
        "cycles": cycles,
    }
