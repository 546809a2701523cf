"""Accumulates accepted Arrow rows and consumed offsets per partition until the policy flushes.

Every consumed message moves its partition's end offset, whether its row is kept or dead-
lettered, so the committed range always covers the DLQ'd records too.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import pyarrow as pa

from k2.ingest.commit_policy import CommitPolicy
from k2.ingest.dlq import DeadLetter
from k2.ingest.schemas import WriterSchema
from k2.ingest.source import RawMessage, TopicPartitionKey


@dataclass
class PartitionBatch:
    """Rows and offsets of one partition, pending commit.

    `start` is where this batch begins: the table's recorded next offset (None when the table
    has none yet, i.e. the partition is read from its beginning). `end` is the next offset.
    """

    start: int | None
    end: int | None = None
    first: int | None = None  # offset of the first consumed message (what a None start means)
    rows: list[tuple[WriterSchema, pa.RecordBatch]] = field(default_factory=list)
    consumed: int = 0
    written: int = 0
    dead: list[DeadLetter] = field(default_factory=list)
    oldest_timestamp_ms: int | None = None
    # Kafka timestamp of the first record of each poll chunk: at commit, one freshness
    # observation each, so the histogram sees the spread over a batch, not only its oldest.
    chunk_timestamps_ms: list[int] = field(default_factory=list)

    @property
    def recorded_start(self) -> int | None:
        """Where the batch begins, for the snapshot summary: the first consumed offset when
        the table has no recorded offset yet."""
        return self.first if self.start is None else self.start

    @property
    def dead_lettered(self) -> int:
        """How many records of this batch go to the DLQ."""
        return len(self.dead)


@dataclass
class PendingBatch:
    """What one commit writes: rows plus the offset range of each partition."""

    partitions: dict[TopicPartitionKey, PartitionBatch]

    @property
    def consumed(self) -> int:
        """Records consumed in this batch."""
        return sum(p.consumed for p in self.partitions.values())

    @property
    def written(self) -> int:
        """Rows this batch appends."""
        return sum(p.written for p in self.partitions.values())

    @property
    def dead(self) -> list[DeadLetter]:
        """Dead letters of this batch, all partitions."""
        return [letter for p in self.partitions.values() for letter in p.dead]

    def writers(self) -> list[WriterSchema]:
        """The distinct writer schemas of the batch's rows."""
        found: dict[int, WriterSchema] = {}
        for p in self.partitions.values():
            for writer, _ in p.rows:
                found[writer.schema_id] = writer
        return list(found.values())


class Batcher:
    """Buffers per partition; knows the batch's size, age and raw bytes."""

    def __init__(self, policy: CommitPolicy) -> None:
        self._policy = policy
        self._starts: dict[TopicPartitionKey, int | None] = {}
        self._pending: dict[TopicPartitionKey, PartitionBatch] = {}
        self._bytes = 0
        self._records = 0
        self._opened_at: float | None = None

    def assign(self, tp: TopicPartitionKey, start: int | None) -> None:
        """Own `tp` from `start` (the table's recorded offset, or None for the beginning)."""
        self._starts[tp] = start
        dropped = self._pending.pop(tp, None)
        if dropped is not None:
            self._records -= dropped.consumed

    def forget(self, tps: Iterable[TopicPartitionKey]) -> None:
        """Drop partitions no longer owned, with their pending rows."""
        for tp in tps:
            self._starts.pop(tp, None)
            dropped = self._pending.pop(tp, None)
            if dropped is not None:
                self._records -= dropped.consumed

    def _batch(self, tp: TopicPartitionKey) -> PartitionBatch:
        batch = self._pending.get(tp)
        if batch is None:
            batch = self._pending[tp] = PartitionBatch(start=self._starts.get(tp))
        return batch

    def consumed(
        self,
        messages: Sequence[RawMessage],
        partitions: Sequence[int | None] | None = None,
        value_bytes: int | None = None,
    ) -> None:
        """Account consumed messages: offsets, counts, raw bytes, oldest timestamp.

        `partitions` (each message's) and `value_bytes` (of all values) when the caller
        already has them: the hot path walks its messages in Python as few times as it can."""
        if not messages:
            return
        if self._opened_at is None:
            self._opened_at = time.monotonic()
        # One pass per partition run (a chunk holds long runs of one partition), not per
        # message: only the run's first and last messages are looked at in Python.
        if partitions is None:
            partitions = [m.partition() for m in messages]
        topic = str(messages[0].topic())
        seen: set[int | None] = set()
        start = 0
        n = len(messages)
        while start < n:
            partition = partitions[start]
            end = start + 1
            while end < n and partitions[end] == partition:
                end += 1
            batch = self._batch((topic, int(partition or 0)))
            first, last = messages[start], messages[end - 1]
            if batch.first is None:
                batch.first = int(first.offset() or 0)
            batch.end = int(last.offset() or 0) + 1
            batch.consumed += end - start
            if partition not in seen:
                seen.add(partition)
                timestamp_ms = first.timestamp()[1]
                batch.chunk_timestamps_ms.append(timestamp_ms)
                if batch.oldest_timestamp_ms is None:
                    batch.oldest_timestamp_ms = timestamp_ms
            start = end
        if value_bytes is None:
            value_bytes = sum(len(v) for m in messages if (v := m.value()) is not None)
        self._bytes += value_bytes
        self._records += n

    def add_rows(self, tp: TopicPartitionKey, writer: WriterSchema, rows: pa.RecordBatch) -> None:
        """Accepted rows of `tp` decoded with `writer`."""
        if rows.num_rows:
            batch = self._batch(tp)
            batch.rows.append((writer, rows))
            batch.written += rows.num_rows

    def add_dead(self, letters: Sequence[DeadLetter]) -> None:
        """Dead letters, accounted to their partitions."""
        for letter in letters:
            tp = (str(letter.message.topic()), int(letter.message.partition() or 0))
            self._batch(tp).dead.append(letter)

    @property
    def buffered_bytes(self) -> int:
        """Raw bytes waiting for a commit (drives backpressure)."""
        return self._bytes

    def age_s(self) -> float:
        """Seconds since the first message of the open batch."""
        return 0.0 if self._opened_at is None else time.monotonic() - self._opened_at

    def should_flush(self) -> bool:
        """Whether the commit policy says flush now."""
        return self._policy.should_flush(self._records, self._bytes, self.age_s())

    def is_full(self) -> bool:
        """Whether the batch reached a size limit (it must be committed before it grows)."""
        return self._policy.is_full(self._records, self._bytes)

    def take(self) -> PendingBatch:
        """Hand over the open batch; the next one starts where this one ends."""
        pending = PendingBatch({tp: b for tp, b in self._pending.items() if b.consumed})
        self._pending = {}
        self._bytes = 0
        self._records = 0
        self._opened_at = None
        for tp, batch in pending.partitions.items():
            if tp in self._starts and batch.end is not None:
                self._starts[tp] = batch.end
        return pending
