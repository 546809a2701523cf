"""Ingest workers as child processes (`k2 ingest run`), their peak memory from /proc, and
waiting for them to commit a number of rows."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from k2 import children
from k2.bench.cpu import TICKS_PER_S, read_proc
from k2.bench.visibility import SnapshotWatcher
from k2.children import WorkerError
from k2.settings import Endpoints

__all__ = ["AssignmentWatch", "WorkerError", "WorkerProcess", "wait_for_rows"]

ASSIGNED = '"message": "assigned"'  # a worker's log line once it owns partitions


class WorkerProcess(children.WorkerProcess):
    """A benchmark's `k2 ingest run` child: the stack's endpoints plus `extra_env`."""

    def __init__(
        self,
        endpoints: Endpoints,
        table: str,
        prefix: str,
        log_file: Path,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        env = {**os.environ, **endpoints.as_env(), **(extra_env or {})}
        super().__init__(table, log_file, env, prefix=prefix)


def wait_for_rows(
    watcher: SnapshotWatcher,
    topic: str,
    partitions: int,
    target: int,
    workers: Sequence[WorkerProcess],
    *,
    timeout_s: float,
    poll_s: float = 0.5,
) -> None:
    """Until the table has consumed `target` records of `topic`; every worker is checked
    alive and its peak memory sampled meanwhile. The watcher is polled here unless running."""
    deadline = time.monotonic() + timeout_s
    while watcher.total(topic, partitions) < target:
        if time.monotonic() > deadline:
            raise WorkerError(f"{len(workers)} worker(s) did not commit {target} records in time")
        for worker in workers:
            worker.check_alive()
            worker.sample_rss()
        time.sleep(poll_s)
        if not watcher.is_running:
            watcher.poll()


class AssignmentWatch:
    """When each worker first owned partitions, and the CPU it had used by then (start-up:
    imports, clients, the group join), so a run's CPU per record can leave start-up out."""

    def __init__(self, workers: Sequence[WorkerProcess], poll_s: float = 0.05) -> None:
        self._workers = list(workers)
        self._poll_s = poll_s
        self.assigned_at: dict[int, float] = {}  # pid -> time.time()
        self.cpu_ticks_at: dict[int, int] = {}  # pid -> utime + stime then
        # Only what each worker logs from now on (a log file may hold an earlier run's lines).
        self._log_from = {
            w.pid: w.log_file.stat().st_size if w.log_file.is_file() else 0 for w in workers
        }
        self._thread = threading.Thread(target=self._watch, name="assignment-watch", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while len(self.assigned_at) < len(self._workers):
            for worker in self._workers:
                if worker.pid in self.assigned_at or not worker.log_file.is_file():
                    continue
                with worker.log_file.open("rb") as log:
                    log.seek(self._log_from[worker.pid])
                    logged = log.read().decode(errors="replace")
                if ASSIGNED in logged:
                    proc = read_proc(worker.pid)
                    if proc is None:  # gone: the run fails on its own
                        return
                    self.assigned_at[worker.pid] = time.time()
                    self.cpu_ticks_at[worker.pid] = proc.own
            time.sleep(self._poll_s)

    def steady_cpu_s(self) -> float | None:
        """CPU seconds the workers used since their assignment (None: not all assigned)."""
        if len(self.cpu_ticks_at) < len(self._workers):
            return None
        total = 0
        for worker in self._workers:
            proc = read_proc(worker.pid)
            if proc is None:
                return None
            total += proc.own - self.cpu_ticks_at[worker.pid]
        return total / TICKS_PER_S

    def first_assigned(self) -> float | None:
        """time.time() of the first assignment."""
        return min(self.assigned_at.values(), default=None)
