"""How far ingest has come: the table's recorded offsets against the topic's end offsets.

The table, not the consumer group, is the source of truth (exactly-once offsets are table
properties written in the same commit as the rows), so "done" means: for every partition of the
topic, the offset recorded in the table has reached the partition's end.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from confluent_kafka import TopicPartition
from pyiceberg.table import Table

from k2 import kafka
from k2.ingest.sink import COUNT_PREFIX, recorded_offsets


@dataclass(frozen=True)
class TopicProgress:
    end_offsets: dict[int, int]
    recorded: dict[int, int]

    @property
    def total(self) -> int:
        return sum(self.end_offsets.values())

    @property
    def done(self) -> int:
        return sum(min(self.recorded.get(p, 0), end) for p, end in self.end_offsets.items())

    @property
    def caught_up(self) -> bool:
        return all(self.recorded.get(p, 0) >= end for p, end in self.end_offsets.items())


def end_offsets(bootstrap_servers: str, topic: str) -> dict[int, int]:
    """Each partition's high watermark (the offset the next record will get)."""
    # Only metadata and watermarks: the group id is required but nothing joins or commits.
    consumer = kafka.consumer(bootstrap_servers, **{"group.id": "k2-demo-progress"})
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        partitions = metadata.topics[topic].partitions
        out: dict[int, int] = {}
        for partition in partitions:
            _low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=10
            )
            out[partition] = int(high)
        return out
    finally:
        consumer.close()


def topic_progress(table: Table, topic: str, ends: dict[int, int]) -> TopicProgress:
    recorded = {
        partition: offset for (_t, partition), offset in recorded_offsets(table, topic).items()
    }
    return TopicProgress(ends, recorded)


def table_counts(table: Table, topic: str) -> Counter[str]:
    """Cumulative `consumed`, `written`, `dead_lettered` over the topic's partitions."""
    counts: Counter[str] = Counter()
    prefix = f"{COUNT_PREFIX}{topic}."
    for key, value in table.properties.items():
        if key.startswith(prefix):
            kind = key.rsplit(".", 1)[1]
            counts[kind] += int(value)
    return counts
