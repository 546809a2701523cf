"""(a) Ingest throughput: pre-load N trades, then time workers until every row is committed.

The same pre-loaded topic serves both runs: after the one-worker run the table is dropped and
bootstrapped again, and since a worker starts from the offsets recorded in its table (none
now), the two-worker run (one consumer group) reads the topic from the beginning again.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from k2.bench.environment import bootstrapped, unique_prefix
from k2.bench.preload import TradeProducer
from k2.bench.visibility import SnapshotWatcher
from k2.bench.workers import WorkerProcess
from k2.catalog import load_catalog
from k2.errors import K2Error
from k2.settings import Endpoints

DONE_TIMEOUT_S = 900.0


def _timed_run(
    endpoints: Endpoints,
    prefix: str,
    *,
    workers: int,
    records: int,
    value_bytes: int,
    logs: Path,
) -> dict[str, Any]:
    catalogue = bootstrapped(endpoints, prefix)
    dataset = catalogue.dataset("trades")
    catalog = load_catalog(endpoints)
    watcher = SnapshotWatcher(catalog, dataset.table_identifier, interval_s=0.5)
    watcher.poll(record=False)
    group = {"K2_INGEST_GROUP_ID_PREFIX": f"k2-bench-{workers}w-"}
    started = time.time()
    procs = [
        WorkerProcess(endpoints, "trades", prefix, logs / f"{prefix}w{workers}-{i}.log", group)
        for i in range(workers)
    ]
    try:
        deadline = time.monotonic() + DONE_TIMEOUT_S
        while watcher.total(dataset.topic.name, dataset.topic.partitions) < records:
            if time.monotonic() > deadline:
                raise K2Error(f"{workers} worker(s) did not commit {records} records in time")
            for proc in procs:
                proc.check_alive()
                proc.sample_rss()
            time.sleep(0.5)
            watcher.poll()
    finally:
        for proc in procs:
            proc.stop()
    commits = sorted(s.committed_ms for s in watcher.snapshots)
    first_ms, last_ms = commits[0], commits[-1]
    total_s = last_ms / 1000 - started
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
        "worker_cpu_s_per_million": round(
            sum(p.cpu_s or 0.0 for p in procs) / records * 1_000_000, 2
        ),
        "worker_logs": [str(p.log_file) for p in procs],
    }


def run(
    endpoints: Endpoints, records: int, logs: Path, worker_counts: tuple[int, ...] = (1, 2)
) -> dict[str, Any]:
    """Pre-load `records` trades once; time 1 and 2 workers ingesting all of them."""
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
    catalog = load_catalog(endpoints)
    for n, workers in enumerate(worker_counts):
        if n:
            # Same topic, fresh table: its recorded offsets are gone, so workers start over.
            catalog.purge_table(dataset.table_identifier)
        result["runs"].append(
            _timed_run(
                endpoints,
                prefix,
                workers=workers,
                records=produced.records,
                value_bytes=produced.value_bytes,
                logs=logs,
            )
        )
    return result
