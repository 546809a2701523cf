"""Ingest workers as child processes (`k2 ingest run`), and their peak memory from /proc."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

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


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds the process has used so far, or None once it has gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # After the ")" closing the command name: fields[11] is utime, fields[12] stime (ticks).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
        self.cpu_s: float | None = None

    @property
    def pid(self) -> int:
        """The child's pid."""
        return self._proc.pid

    def sample_rss(self) -> int | None:
        """Read VmHWM now (it only grows); remembered for after the process ends."""
        value = peak_rss_bytes(self._proc.pid)
        if value is not None:
            self.peak_rss = max(value, self.peak_rss or 0)
        cpu = cpu_seconds(self._proc.pid)
        if cpu is not None:
            self.cpu_s = cpu  # load-independent cost: CPU seconds, not wall time
        return self.peak_rss

    def check_alive(self) -> None:
        """Raise when the worker died (its log says why)."""
        code = self._proc.poll()
        if code is not None:
            raise WorkerError(f"ingest worker exited with {code}; see {self.log_file}")

    def stop(self) -> int:
        """SIGTERM (graceful: flush, commit, leave the group), then wait; kill if it hangs."""
        self.sample_rss()
        return stop(self._proc)
