"""Ingest worker processes for the demo: one `k2 ingest run` per table, scraped by Prometheus."""

from __future__ import annotations

import os
import time

from k2.children import WorkerProcess, terminate
from k2.net import free_port
from k2stack.local.context import StackContext
from k2stack.local.services.prometheus import register_target, unregister_target


def start_worker(table: str, env: dict[str, str], ctx: StackContext) -> WorkerProcess:
    """Start `k2 ingest run --table <table>` with its metrics registered in Prometheus."""
    port = free_port()
    worker = WorkerProcess(
        table,
        ctx.state_dir / "logs" / f"ingest-{table}.log",
        {**os.environ, **env},
        metrics_port=port,
    )
    register_target(ctx, f"ingest-{table}", port, {"table": table})
    return worker


def stop_workers(workers: list[WorkerProcess], ctx: StackContext) -> dict[str, int]:
    codes: dict[str, int] = {}
    # Signal all first so they drain in parallel, then wait for each.
    for worker in workers:
        terminate(worker.proc)
    deadline = time.monotonic() + 60
    for worker in workers:
        codes[worker.table] = worker.stop(max(1.0, deadline - time.monotonic()))
        unregister_target(ctx, f"ingest-{worker.table}")
    return codes
