"""K2 commands as child processes: how to start `k2`, how to stop one gracefully, and the
one `WorkerProcess` that runs an ingest worker.

Shared by the demo, the benchmarks, the load run and the tests, which all run `k2 ingest run`
as a child so that it can be signalled (SIGTERM to drain, kill -9 to crash) like a deployment.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from k2.errors import K2Error

STOP_TIMEOUT_S = 60.0


def k2_command() -> list[str]:
    """argv[0:] that runs the `k2` CLI of this interpreter's environment."""
    script = Path(sys.executable).with_name("k2")
    if script.is_file():
        return [str(script)]
    # k2.cli.main has no `__main__` guard: `-m k2.cli.main` would run nothing.
    return [sys.executable, "-c", "from k2.cli.main import app; app()"]


def terminate(process: subprocess.Popen[bytes]) -> None:
    """Send SIGTERM unless it has already exited (callers stopping many signal all first)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)


def stop(process: subprocess.Popen[bytes], timeout_s: float = STOP_TIMEOUT_S) -> int:
    """SIGTERM (an ingest worker flushes, commits and leaves its group), wait, then reap.

    A child still running after `timeout_s` is killed: a hung worker must not hang its caller.
    """
    terminate(process)
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    return int(process.returncode)


class WorkerError(K2Error):
    """An ingest worker could not be started or died."""


def peak_rss_bytes(pid: int) -> int | None:
    """A process's peak resident set size (VmHWM), or None once it has gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return None


class WorkerProcess:
    """One `k2 ingest run --table T` child: the one way K2 runs a worker as a process.

    The demo, the benchmarks and the reliability tests start workers through it (their own
    constructors only choose the environment); it checks, scrapes, samples, stops and kills.
    """

    def __init__(
        self,
        table: str,
        log_file: Path,
        env: Mapping[str, str],
        *,
        prefix: str | None = None,
        metrics_port: int | None = None,
    ) -> None:
        command = [*k2_command(), "ingest", "run", "--table", table]
        if prefix:
            command += ["--prefix", prefix]
        if metrics_port is not None:
            command += ["--metrics-port", str(metrics_port)]
        self.table = table
        self.log_file = log_file
        self.metrics_port = metrics_port
        self.peak_rss: int | None = None
        self.started_wall = time.time()
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with log_file.open("ab") as log:
            self.proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(env),
            )

    @property
    def pid(self) -> int:
        """The child's pid."""
        return self.proc.pid

    @property
    def metrics_url(self) -> str | None:
        """Its Prometheus endpoint (None without `metrics_port`)."""
        if self.metrics_port is None:
            return None
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def alive(self) -> bool:
        """Whether the child still runs."""
        return self.proc.poll() is None

    def check_alive(self) -> None:
        """Raise WorkerError when the worker died (its log says why)."""
        code = self.proc.poll()
        if code is not None:
            raise WorkerError(
                f"ingest worker for {self.table} exited with {code}; see {self.log_file}"
            )

    def sample_rss(self) -> int | None:
        """Read VmHWM now (it only grows); remembered for after the process ends."""
        value = peak_rss_bytes(self.proc.pid)
        if value is not None:
            self.peak_rss = max(value, self.peak_rss or 0)
        return self.peak_rss

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM (flush, commit, leave the group), then reap; SIGKILL if it hangs."""
        self.sample_rss()
        return stop(self.proc, timeout_s)

    def kill9(self) -> int:
        """SIGKILL (a crash: no flush, no goodbye to the group), then reap."""
        self.sample_rss()
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
        return int(self.proc.wait(60))

    def freeze(self) -> None:
        """SIGSTOP: the process (and its heartbeats) stop dead."""
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT."""
        self.proc.send_signal(signal.SIGCONT)

    def log_text(self) -> str:
        """The child's log so far."""
        return self.log_file.read_text(errors="replace")

    def scrape(self) -> dict[str, float] | None:
        """Its /metrics as {'name{label=value,...}': value}; None when unreachable."""
        if self.metrics_url is None:
            return None
        try:
            text = httpx.get(self.metrics_url, timeout=3).text
        except httpx.HTTPError:
            return None
        out: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                out[f"{sample.name}{{{labels}}}"] = sample.value
        return out
