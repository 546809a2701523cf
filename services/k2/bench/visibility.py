"""When rows become visible in Iceberg, and how old they were then.

A watcher polls the table (as any reader would) and notes, for every new snapshot, the wall
time it was first seen and the Kafka offset ranges it covers (the ingest sink writes them into
the snapshot summary, `k2.offsets`). Afterwards each covered record's Kafka timestamp, set by
the producer when it called `produce()`, is read back: freshness = seen - produced. The seen
time is an upper bound (late by at most one poll interval); the snapshot's own commit
timestamp gives the lower bound.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from confluent_kafka import TopicPartition
from pyiceberg.catalog import Catalog

from k2 import kafka
from k2.ingest.sink import SUMMARY_OFFSETS, count_property

POLL_INTERVAL_S = 0.2
READ_BATCH = 10_000


@dataclass(frozen=True)
class SeenSnapshot:
    """One snapshot: first seen at `seen_ms`, committed at `committed_ms`, covering ranges."""

    snapshot_id: int
    seen_ms: float
    committed_ms: int
    ranges: dict[tuple[str, int], tuple[int, int]]  # (topic, partition) -> [start, end)


class SnapshotWatcher:
    """Polls one table on a thread and records every snapshot it sees appear."""

    def __init__(
        self, catalog: Catalog, identifier: tuple[str, str], interval_s: float = POLL_INTERVAL_S
    ) -> None:
        self._catalog = catalog
        self._identifier = identifier
        self._interval_s = interval_s
        self._known: set[int] = set()
        self.snapshots: list[SeenSnapshot] = []
        self.properties: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="snapshot-watcher", daemon=True)

    def start(self) -> SnapshotWatcher:
        """Note what exists now (not counted), then watch for new snapshots."""
        self.poll(record=False)
        self._thread.start()
        return self

    @property
    def is_running(self) -> bool:
        """Whether the polling thread runs (otherwise callers poll by hand)."""
        return self._thread.is_alive()

    def stop(self) -> None:
        """Stop polling (one last poll first)."""
        self._stop.set()
        self._thread.join()
        self.poll()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.poll()

    def poll(self, record: bool = True) -> None:
        """Load the table once; remember snapshots not seen before."""
        table = self._catalog.load_table(self._identifier)
        seen_ms = time.time() * 1000
        self.properties = dict(table.properties)
        for snapshot in table.metadata.snapshots:
            if snapshot.snapshot_id in self._known:
                continue
            self._known.add(snapshot.snapshot_id)
            if not record or snapshot.summary is None:
                continue
            text = snapshot.summary.get(SUMMARY_OFFSETS)
            if text is None:
                continue
            ranges = {}
            for key, (start, end) in json.loads(text).items():
                if end is None:
                    continue
                topic, _, partition = key.rpartition(":")
                # No start: the partition's first batch, read from its beginning (offset 0
                # on the fresh topics benchmarks use).
                ranges[(topic, int(partition))] = (int(start or 0), int(end))
            self.snapshots.append(
                SeenSnapshot(snapshot.snapshot_id, seen_ms, snapshot.timestamp_ms, ranges)
            )

    def total(self, topic: str, partitions: int, kind: str = "consumed") -> int:
        """A cumulative count the sink keeps in table properties, summed over partitions."""
        return sum(
            int(self.properties.get(count_property((topic, p), kind), "0"))
            for p in range(partitions)
        )


def kafka_timestamps(
    bootstrap_servers: str, ranges: dict[tuple[str, int], tuple[int, int]]
) -> dict[tuple[str, int], list[int]]:
    """Producer timestamps (ms) of every record in `ranges`, index = offset - start."""
    consumer = kafka.consumer(
        bootstrap_servers,
        **{
            "group.id": "k2-bench-reader",
            "enable.auto.commit": False,
            "enable.partition.eof": False,
        },
    )
    out: dict[tuple[str, int], list[int]] = {}
    try:
        for (topic, partition), (start, end) in ranges.items():
            stamps: list[int] = []
            consumer.assign([TopicPartition(topic, partition, start)])
            deadline = time.monotonic() + 120
            while len(stamps) < end - start and time.monotonic() < deadline:
                for message in consumer.consume(READ_BATCH, 1.0):
                    if message.error() is None and start <= (message.offset() or 0) < end:
                        stamps.append(message.timestamp()[1])
            out[(topic, partition)] = stamps
    finally:
        consumer.close()
    return out


@dataclass(frozen=True)
class Freshness:
    """Per-record ages at visibility, in seconds (seen by a reader / committed)."""

    seen_s: list[float]
    committed_s: list[float]


def freshness(
    bootstrap_servers: str, snapshots: Sequence[SeenSnapshot], since_ms: float = 0.0
) -> Freshness:
    """Ages of the records the snapshots made visible (those produced after `since_ms`)."""
    if not snapshots:
        return Freshness([], [])
    spans: dict[tuple[str, int], tuple[int, int]] = {}
    for snap in snapshots:
        for tp, (start, end) in snap.ranges.items():
            low, high = spans.get(tp, (start, end))
            spans[tp] = (min(low, start), max(high, end))
    stamps = kafka_timestamps(bootstrap_servers, spans)
    seen: list[float] = []
    committed: list[float] = []
    by_partition: dict[tuple[str, int], list[SeenSnapshot]] = defaultdict(list)
    for snap in snapshots:
        for tp in snap.ranges:
            by_partition[tp].append(snap)
    for tp, snaps in by_partition.items():
        base = spans[tp][0]
        values = stamps.get(tp, [])
        for snap in snaps:
            start, end = snap.ranges[tp]
            for ts in values[start - base : end - base]:
                if ts >= since_ms:
                    seen.append((snap.seen_ms - ts) / 1000)
                    committed.append((snap.committed_ms - ts) / 1000)
    return Freshness(seen, committed)


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (`q` in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[rank]


def summary(values: Sequence[float]) -> dict[str, float | int | None]:
    """Count, p50, p95, p99 and max of `values`, rounded to milliseconds."""

    def r(v: float | None) -> float | None:
        return None if v is None else round(v, 3)

    return {
        "count": len(values),
        "p50": r(percentile(values, 50)),
        "p95": r(percentile(values, 95)),
        "p99": r(percentile(values, 99)),
        "max": r(max(values) if values else None),
    }
