"""Where an ingest worker's time goes: py-spy samples a real `k2 ingest run` over all threads.

Not a default part (`--only profile`): sampling pauses the worker 250 times a second. The
worker ingests a pre-loaded topic as in the throughput part; py-spy attaches once it has its
partitions (startup and imports are not sampled) and stops when every row is committed. The
JSON gets, per thread, its share of samples and the top functions by own and inclusive
samples; the collapsed stacks stay in a file (for flamegraph.pl or speedscope). If py-spy
cannot attach (no ptrace rights), the error is in the JSON and the rest still runs.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from k2.bench import pyspy
from k2.bench.cpu import CpuMeter
from k2.bench.environment import StackUnderTest, bootstrapped, unique_prefix
from k2.bench.preload import TradeProducer
from k2.bench.visibility import SnapshotWatcher
from k2.bench.workers import ASSIGNED, WorkerProcess, wait_for_rows
from k2.catalog import load_catalog

DONE_TIMEOUT_S = 900.0
ASSIGNED_TIMEOUT_S = 120.0


def _wait_for_assignment(worker: WorkerProcess) -> bool:
    """Whether the worker logged its partition assignment in time (else sample anyway)."""
    deadline = time.monotonic() + ASSIGNED_TIMEOUT_S
    while time.monotonic() < deadline:
        worker.check_alive()
        if worker.log_file.is_file() and ASSIGNED in worker.log_file.read_text():
            return True
        time.sleep(0.05)
    return False


def run(stack: StackUnderTest, records: int, logs: Path) -> dict[str, Any]:
    """Pre-load `records` trades; ingest them with one worker process sampled by py-spy."""
    endpoints = stack.endpoints
    prefix = unique_prefix("prof")
    dataset = bootstrapped(endpoints, prefix).dataset("trades")
    TradeProducer(endpoints, dataset).flat_out(records)
    topic, partitions = dataset.topic.name, dataset.topic.partitions
    watcher = SnapshotWatcher(load_catalog(endpoints), dataset.table_identifier, interval_s=0.5)
    watcher.poll(record=False)
    worker = WorkerProcess(endpoints, "trades", prefix, logs / f"{prefix}worker.log")
    spawned = time.monotonic()
    sampler: pyspy.Sampler | None = None
    try:
        assigned = _wait_for_assignment(worker)
        meter = CpuMeter(stack.service_pids()).start()
        meter.track("workers", worker.pid)
        attached = time.monotonic()
        sampler = pyspy.Sampler(worker.pid, logs / f"{prefix}worker.pyspy.txt")
        if sampler.pid is not None:
            meter.track("py_spy", sampler.pid)
        wait_for_rows(watcher, topic, partitions, records, [worker], timeout_s=DONE_TIMEOUT_S)
        seconds = time.monotonic() - attached
        cpu = meter.finish()
    finally:
        last_line = sampler.stop() if sampler is not None else ""
        worker.stop()
    profile: dict[str, Any] = {
        "command": " ".join(sampler.command) if sampler.command else None,
        "raw_file": str(sampler.out) if sampler.out.is_file() else None,
        "rate_hz": sampler.rate_hz,
        "py_spy_says": last_line,
        "error": sampler.error,
    }
    if sampler.error is None:
        summary = pyspy.summarise(sampler.out)
        # Busy samples per tick: how many threads were busy at once, on average.
        ticks = sampler.rate_hz * seconds
        summary["busy_threads_avg"] = round(summary["busy_samples"] / ticks, 2)
        profile.update(summary)
    return {
        "records": records,
        "sampled_after_s": round(attached - spawned, 2),
        "sampling_from": "partition assignment" if assigned else "assignment not seen in time",
        "seconds_sampled": round(seconds, 2),
        "records_per_s_while_sampled": round(records / seconds),
        "peak_rss_mb": round((worker.peak_rss or 0) / 2**20, 1),
        "worker_log": str(worker.log_file),
        "py_spy": profile,
        "cpu": cpu,
    }
