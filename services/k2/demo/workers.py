"""Ingest worker processes for the demo: one `k2 ingest run` per table, scraped by Prometheus."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from k2.children import k2_command, stop, terminate
from k2.errors import K2Error
from k2stack.local.context import StackContext
from k2stack.local.services.prometheus import register_target, unregister_target


class WorkerError(K2Error):
    """An ingest worker could not be started or died."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class WorkerProcess:
    table: str
    metrics_port: int
    log_file: Path
    process: subprocess.Popen[bytes]

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def check_alive(self) -> None:
        code = self.process.poll()
        if code is not None:
            raise WorkerError(
                f"ingest worker for {self.table} exited with {code}; see {self.log_file}"
            )

    def stop(self, timeout_s: float = 60.0) -> int:
        """SIGTERM (the worker flushes, commits and leaves its group), then wait."""
        return stop(self.process, timeout_s)


def start_worker(table: str, env: dict[str, str], ctx: StackContext) -> WorkerProcess:
    """Start `k2 ingest run --table <table>` with its metrics registered in Prometheus."""
    port = _free_port()
    log_file = ctx.state_dir / "logs" / f"ingest-{table}.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    argv = [*k2_command(), "ingest", "run", "--table", table, "--metrics-port", str(port)]
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
        )
    register_target(ctx, f"ingest-{table}", port, {"table": table})
    return WorkerProcess(table, port, log_file, process)


def stop_workers(workers: list[WorkerProcess], ctx: StackContext) -> dict[str, int]:
    codes: dict[str, int] = {}
    # Signal all first so they drain in parallel, then wait for each.
    for worker in workers:
        terminate(worker.process)
    deadline = time.monotonic() + 60
    for worker in workers:
        codes[worker.table] = worker.stop(max(1.0, deadline - time.monotonic()))
        unregister_target(ctx, f"ingest-{worker.table}")
    return codes
