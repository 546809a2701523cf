"""Ingest workers as child processes (`k2 ingest run`), their peak memory from /proc, and
waiting for them to commit a number of rows."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from k2.bench.visibility import SnapshotWatcher
from k2.children import k2_command, stop
from k2.errors import K2Error
from k2.settings import Endpoints


class WorkerError(K2Error):
    """An ingest worker process failed."""


def peak_rss_bytes(pid: int) -> int | None:
    """The process's peak resident set size (VmHWM), or None once it has gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return None


class WorkerProcess:
    """One `k2 ingest run` child; `stop()` asks it to flush and leave, then reaps it."""

    def __init__(
        self,
        endpoints: Endpoints,
        table: str,
        prefix: str,
        log_file: Path,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        env = {**os.environ, **endpoints.as_env(), **(extra_env or {})}
        self.log_file = log_file
        self.started_wall = time.time()
        with log_file.open("ab") as log:
            self._proc = subprocess.Popen(
                [*k2_command(), "ingest", "run", "--table", table, "--prefix", prefix],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.peak_rss: int | None = None

    @property
    def pid(self) -> int:
        """The child's pid."""
        return self._proc.pid

    def sample_rss(self) -> int | None:
        """Read VmHWM now (it only grows); remembered for after the process ends."""
        value = peak_rss_bytes(self._proc.pid)
        if value is not None:
            self.peak_rss = max(value, self.peak_rss or 0)
        return self.peak_rss

    def check_alive(self) -> None:
        """Raise when the worker died (its log says why)."""
        code = self._proc.poll()
        if code is not None:
            raise WorkerError(f"ingest worker exited with {code}; see {self.log_file}")

    def is_alive(self) -> bool:
        """Whether the child still runs."""
        return self._proc.poll() is None

    def kill9(self) -> int:
        """SIGKILL (a crash: no flush, no goodbye to the group), then reap."""
        self.sample_rss()
        self._proc.kill()
        return self._proc.wait(60)

    def stop(self) -> int:
        """SIGTERM (graceful: flush, commit, leave the group), then wait; kill if it hangs."""
        self.sample_rss()
        return stop(self._proc)


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
