"""(a) Ingest throughput: pre-load N trades, then time workers until every row is committed.

The same pre-loaded topic serves both runs: after the one-worker run the table is dropped and
bootstrapped again, and since a worker starts from the offsets recorded in its table (none
now), the two-worker run (one consumer group) reads the topic from the beginning again.
Each run also says where the machine's CPU went while it ran (`k2.bench.cpu`): workers,
every stack service, the bench itself and everything else.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from k2 import kafka
from k2.bench.cpu import CpuMeter
from k2.bench.environment import StackUnderTest, bootstrapped, unique_prefix
from k2.bench.preload import TradeProducer
from k2.bench.visibility import SnapshotWatcher
from k2.bench.workers import AssignmentWatch, WorkerProcess, wait_for_rows
from k2.catalog import load_catalog
from k2.settings import CatalogPrincipal, Endpoints

DONE_TIMEOUT_S = 900.0
WARMUP_RECORDS = 300_000


def _timed_run(
    stack: StackUnderTest,
    prefix: str,
    *,
    workers: int,
    records: int,
    value_bytes: int,
    logs: Path,
) -> dict[str, Any]:
    endpoints = stack.endpoints
    catalogue = bootstrapped(endpoints, prefix)
    dataset = catalogue.dataset("trades")
    catalog = load_catalog(endpoints)
    watcher = SnapshotWatcher(catalog, dataset.table_identifier, interval_s=0.5)
    watcher.poll(record=False)
    group = {"K2_INGEST_GROUP_ID_PREFIX": f"k2-bench-{workers}w-"}
    meter = CpuMeter(stack.service_pids()).start()
    started = time.time()
    procs = [
        WorkerProcess(endpoints, "trades", prefix, logs / f"{prefix}w{workers}-{i}.log", group)
        for i in range(workers)
    ]
    for proc in procs:
        meter.track("workers", proc.pid)
    assignments = AssignmentWatch(procs)
    try:
        topic, partitions = dataset.topic.name, dataset.topic.partitions
        wait_for_rows(watcher, topic, partitions, records, procs, timeout_s=DONE_TIMEOUT_S)
        cpu = meter.finish()  # every row committed: the workers' shutdown is not counted
        steady_cpu_s = assignments.steady_cpu_s()
    finally:
        for proc in procs:
            proc.stop()
    commits = sorted(s.committed_ms for s in watcher.snapshots)
    first_ms, last_ms = commits[0], commits[-1]
    total_s = last_ms / 1000 - started
    assigned = assignments.first_assigned()
    steady_s = None if assigned is None else last_ms / 1000 - assigned
    written = watcher.total(dataset.topic.name, dataset.topic.partitions, "written")
    return {
        "workers": workers,
        "records": records,
        "rows_written": written,
        "commits": len(commits),
        "seconds_from_start": round(total_s, 2),
        "records_per_s": round(records / total_s),
        "mb_per_s": round(value_bytes / total_s / 1e6, 2),
        "seconds_first_to_last_commit": round((last_ms - first_ms) / 1000, 2),
        "peak_rss_mb": [round((p.peak_rss or 0) / 2**20, 1) for p in procs],
        # CPU seconds of the workers (startup included) per million records: comparable
        # across runs on a machine whose load from other work varies.
        "worker_cpu_s_per_million": _per_million(cpu["cpu_s"]["workers"], records),
        # The same from the first assignment on: what ingesting costs once the processes
        # are up (start-up, ~2 CPU-s per worker here, is a one-off per process).
        "seconds_from_assignment": None if steady_s is None else round(steady_s, 2),
        "records_per_s_from_assignment": None if steady_s is None else round(records / steady_s),
        "worker_cpu_s_per_million_from_assignment": (
            None if steady_cpu_s is None else _per_million(steady_cpu_s, records)
        ),
        "cpu": cpu,
        "worker_logs": [str(p.log_file) for p in procs],
    }


def _per_million(cpu_s: float | str, records: int) -> float | None:
    return round(cpu_s / records * 1_000_000, 2) if isinstance(cpu_s, float) else None


def warm_group_coordinator(endpoints: Endpoints, topic: str, timeout_s: float = 60.0) -> None:
    """Join a throwaway group once, so the first timed run does not pay for the cluster's first
    consumer group: on a fresh stack that creates `__consumer_offsets` (measured: 3.1 s
    from the first worker's join to its assignment, 0.1 s for later groups), a one-time cost
    no worker of a running deployment sees."""
    consumer = kafka.consumer(
        endpoints.kafka_bootstrap_servers,
        **{"group.id": unique_prefix("warm"), "enable.auto.commit": False},
    )
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + timeout_s
        while not consumer.assignment() and time.monotonic() < deadline:
            consumer.poll(0.2)
    finally:
        consumer.close()


def warm_stack(stack: StackUnderTest, logs: Path) -> dict[str, Any]:
    """One untimed ingest of WARMUP_RECORDS trades into a table of its own, so the timed runs
    meet the services as a running deployment's workers do: the JVMs (Kafka, registry,
    catalog) compiled and SeaweedFS's buckets in use. Measured on fresh stacks: the first
    timed run, whichever it was, took up to ~30 % more worker CPU per record than the same run
    later, and up to twice the catalog's CPU."""
    endpoints = stack.endpoints
    prefix = unique_prefix("warm")
    dataset = bootstrapped(endpoints, prefix).dataset("trades")
    produced = TradeProducer(endpoints, dataset).flat_out(WARMUP_RECORDS)
    watcher = SnapshotWatcher(load_catalog(endpoints), dataset.table_identifier, interval_s=0.5)
    watcher.poll(record=False)
    started = time.monotonic()
    worker = WorkerProcess(endpoints, "trades", prefix, logs / f"{prefix}worker.log")
    try:
        topic, partitions = dataset.topic.name, dataset.topic.partitions
        wait_for_rows(
            watcher, topic, partitions, produced.records, [worker], timeout_s=DONE_TIMEOUT_S
        )
    finally:
        worker.stop()
    return {"records": produced.records, "seconds": round(time.monotonic() - started, 2)}


def run(
    stack: StackUnderTest, records: int, logs: Path, worker_counts: tuple[int, ...] = (1, 2)
) -> dict[str, Any]:
    """Pre-load `records` trades once; time 1 and 2 workers ingesting all of them."""
    endpoints = stack.endpoints
    prefix = unique_prefix("bench")
    catalogue = bootstrapped(endpoints, prefix)
    dataset = catalogue.dataset("trades")
    produced = TradeProducer(endpoints, dataset).flat_out(records)
    result: dict[str, Any] = {
        "preload": {
            "records": produced.records,
            "value_bytes": produced.value_bytes,
            "avg_value_bytes": round(produced.value_bytes / max(produced.records, 1), 1),
            "seconds": round(produced.seconds, 2),
            "records_per_s": round(produced.records_per_s),
        },
        "partitions": dataset.topic.partitions,
        "runs": [],
    }
    warm_group_coordinator(endpoints, dataset.topic.name)
    result["warmup"] = warm_stack(stack, logs)
    # Purges the table between runs: the catalog's admin principal.
    catalog = load_catalog(endpoints, CatalogPrincipal.ADMIN)
    for n, workers in enumerate(worker_counts):
        if n:
            # Same topic, fresh table: its recorded offsets are gone, so workers start over.
            catalog.purge_table(dataset.table_identifier)
        result["runs"].append(
            _timed_run(
                stack,
                prefix,
                workers=workers,
                records=produced.records,
                value_bytes=produced.value_bytes,
                logs=logs,
            )
        )
    return result
