"""Ingest workers as child processes (`k2 ingest run`), their peak memory from /proc, and
waiting for them to commit a number of rows."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

from k2 import children
from k2.bench.visibility import SnapshotWatcher
from k2.children import WorkerError
from k2.settings import Endpoints

__all__ = ["WorkerError", "WorkerProcess", "wait_for_rows"]


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
