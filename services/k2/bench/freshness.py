"""(b) Freshness at fixed offered rates: visible-in-Iceberg minus produce time, per record.

One worker ingests one fresh topic; after a warm-up (group joined, table loaded) each rate is
offered for `seconds`, then drained before the next rate starts, so every snapshot belongs to
exactly one rate. Messages are encoded before the clock starts: the producer only paces.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from k2.bench.environment import bootstrapped, unique_prefix
from k2.bench.preload import TradeProducer
from k2.bench.visibility import SnapshotWatcher, freshness, summary
from k2.bench.workers import WorkerProcess, wait_for_rows
from k2.catalog import load_catalog
from k2.settings import Endpoints

WARMUP_RECORDS = 2_000
DRAIN_TIMEOUT_S = 300.0
POLL_S = 0.2


def _drain(
    watcher: SnapshotWatcher, topic: str, partitions: int, target: int, worker: WorkerProcess
) -> None:
    wait_for_rows(
        watcher, topic, partitions, target, [worker], timeout_s=DRAIN_TIMEOUT_S, poll_s=POLL_S
    )


def run(endpoints: Endpoints, rates: tuple[int, ...], seconds: float, logs: Path) -> dict[str, Any]:
    """Offer each rate for `seconds`; p50/p99 freshness of what became visible."""
    prefix = unique_prefix("fresh")
    dataset = bootstrapped(endpoints, prefix).dataset("trades")
    topic, partitions = dataset.topic.name, dataset.topic.partitions
    producer = TradeProducer(endpoints, dataset, linger_ms=5)
    catalog = load_catalog(endpoints)
    worker = WorkerProcess(endpoints, "trades", prefix, logs / f"{prefix}worker.log")
    results: list[dict[str, Any]] = []
    try:
        sent = producer.paced(producer.encoded(WARMUP_RECORDS), 2_000).records
        warm = SnapshotWatcher(catalog, dataset.table_identifier)
        _drain(warm, topic, partitions, sent, worker)
        for rate in rates:
            messages = producer.encoded(int(rate * seconds))
            watcher = SnapshotWatcher(catalog, dataset.table_identifier).start()
            window_ms = float(time.time_ns() // 1_000_000)  # Kafka timestamps are whole ms
            produced = producer.paced(messages, rate)
            sent += produced.records
            _drain(watcher, topic, partitions, sent, worker)
            watcher.stop()
            ages = freshness(endpoints.kafka_bootstrap_servers, watcher.snapshots, window_ms)
            results.append(
                {
                    "offered_per_s": rate,
                    "achieved_per_s": round(produced.records_per_s),
                    "records": produced.records,
                    "snapshots": len(watcher.snapshots),
                    "seen_s": summary(ages.seen_s),
                    "committed_s": summary(ages.committed_s),
                }
            )
    finally:
        worker.stop()
    return {
        "seconds_per_rate": seconds,
        "poll_interval_s": 0.2,
        "rates": results,
        "peak_rss_mb": round((worker.peak_rss or 0) / 2**20, 1),
        "worker_log": str(worker.log_file),
    }
