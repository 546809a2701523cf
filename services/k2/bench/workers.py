"""Ingest workers as child processes (`k2 ingest run`), and their peak memory from /proc."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from k2.bench.environment import endpoint_env
from k2.errors import K2Error
from k2.settings import Endpoints

STOP_TIMEOUT_S = 60.0


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


def _k2_command() -> list[str]:
    script = Path(sys.executable).with_name("k2")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "from k2.cli.main import app; app()"]


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
        env = {**os.environ, **endpoint_env(endpoints), **(extra_env or {})}
        self.log_file = log_file
        self.started_wall = time.time()
        with log_file.open("ab") as log:
            self._proc = subprocess.Popen(
                [*_k2_command(), "ingest", "run", "--table", table, "--prefix", prefix],
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

    def stop(self) -> int:
        """SIGTERM (graceful: flush, commit, leave the group), then wait; kill if it hangs."""
        self.sample_rss()
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        return int(self._proc.returncode)
