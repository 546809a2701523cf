"""Reading and replaying a DLQ topic: what `k2 dlq inspect` and `k2 dlq replay` do.

Reading never joins a consumer group (it assigns every partition from its low watermark to
the high watermark seen at the start), so inspecting moves no offsets anyone relies on.
Replay sends each dead letter's raw key, value and original headers back to its source topic
with an idempotent producer; K2's provenance headers are dropped so the record looks exactly
as first produced. A replayed record that was in fact ingested meanwhile is caught by the
worker's identity dedup (within its window).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from k2 import kafka
from k2.ingest.dlq import (
    DLQ_HEADERS,
    HEADER_DETAIL,
    HEADER_ERROR_CLASS,
    HEADER_REASON,
    HEADER_SOURCE_OFFSET,
    HEADER_SOURCE_PARTITION,
    HEADER_SOURCE_TOPIC,
)
from k2.ingest.errors import IngestError

READ_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Letter:
    """One dead letter as read back from its DLQ topic."""

    dlq_partition: int
    dlq_offset: int
    source_topic: str
    source_partition: int
    source_offset: int
    reason: str
    error_class: str
    detail: str
    key: bytes | None
    value: bytes | None
    original_headers: list[tuple[str, str | bytes | None]]

    def summary(self) -> dict[str, object]:
        """JSON-friendly fields (raw bytes as their length)."""
        return {
            "dlq_partition": self.dlq_partition,
            "dlq_offset": self.dlq_offset,
            "source_topic": self.source_topic,
            "source_partition": self.source_partition,
            "source_offset": self.source_offset,
            "reason": self.reason,
            "error_class": self.error_class,
            "detail": self.detail,
            "value_bytes": None if self.value is None else len(self.value),
        }


@dataclass(frozen=True)
class LetterFilter:
    """Which letters to select; None matches anything."""

    reasons: frozenset[str] | None = None
    error_class: str | None = None
    source_partition: int | None = None

    def matches(self, letter: Letter) -> bool:
        """Whether `letter` is selected."""
        return (
            (self.reasons is None or letter.reason in self.reasons)
            and (self.error_class is None or letter.error_class == self.error_class)
            and (self.source_partition is None or letter.source_partition == self.source_partition)
        )


def _as_bytes(value: str | bytes | None) -> bytes:
    if value is None:
        return b""
    return value.encode() if isinstance(value, str) else value


def _letter(message: Message) -> Letter:
    raw = message.headers() or []
    pairs = list(raw.items()) if isinstance(raw, dict) else list(raw)
    k2 = {str(k): _as_bytes(v).decode(errors="replace") for k, v in pairs if k in DLQ_HEADERS}
    try:
        source_partition = int(k2.get(HEADER_SOURCE_PARTITION, ""))
        source_offset = int(k2.get(HEADER_SOURCE_OFFSET, ""))
    except ValueError as e:
        raise IngestError("a DLQ record lacks K2's provenance headers") from e
    return Letter(
        dlq_partition=int(message.partition() or 0),
        dlq_offset=int(message.offset() or 0),
        source_topic=k2.get(HEADER_SOURCE_TOPIC, ""),
        source_partition=source_partition,
        source_offset=source_offset,
        reason=k2.get(HEADER_REASON, ""),
        error_class=k2.get(HEADER_ERROR_CLASS, ""),
        detail=k2.get(HEADER_DETAIL, ""),
        key=message.key(),
        value=message.value(),
        original_headers=[(str(k), v) for k, v in pairs if k not in DLQ_HEADERS],
    )


def read_letters(
    bootstrap_servers: str, dlq_topic: str, selected: LetterFilter | None = None
) -> Iterator[Letter]:
    """Every dead letter now in `dlq_topic` (matching `selected`), in partition order."""
    consumer = kafka.consumer(
        bootstrap_servers,
        **{
            "group.id": "k2-dlq-reader",  # required by librdkafka; never committed
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        },
    )
    try:
        metadata = consumer.list_topics(dlq_topic, timeout=READ_TIMEOUT_S)
        topic = metadata.topics.get(dlq_topic)
        if topic is None or topic.error is not None:
            raise IngestError(f"DLQ topic {dlq_topic} not found")
        ends: dict[int, int] = {}
        assignment = []
        for partition in topic.partitions:
            low, high = consumer.get_watermark_offsets(
                TopicPartition(dlq_topic, partition), timeout=READ_TIMEOUT_S
            )
            if high > low:
                ends[partition] = high
                assignment.append(TopicPartition(dlq_topic, partition, low))
        consumer.assign(assignment)
        yield from _drain(consumer, ends, selected or LetterFilter())
    finally:
        consumer.close()


def _drain(consumer: Consumer, ends: dict[int, int], selected: LetterFilter) -> Iterator[Letter]:
    deadline = time.monotonic() + READ_TIMEOUT_S
    while ends:
        message = consumer.poll(0.5)
        if message is None:
            if time.monotonic() > deadline:
                raise IngestError(f"DLQ read stalled; partitions left: {sorted(ends)}")
            continue
        deadline = time.monotonic() + READ_TIMEOUT_S
        error = message.error()
        if error is not None:
            if error.code() == KafkaError._PARTITION_EOF:
                ends.pop(int(message.partition() or 0), None)
                continue
            raise IngestError(f"DLQ read failed: {error}")
        partition, offset = int(message.partition() or 0), int(message.offset() or 0)
        if offset >= ends.get(partition, -1):
            ends.pop(partition, None)
            continue
        letter = _letter(message)
        if selected.matches(letter):
            yield letter
        if offset + 1 >= ends[partition]:
            ends.pop(partition)


def replay_letters(
    bootstrap_servers: str,
    letters: list[Letter],
    *,
    on_sent: Callable[[Letter], None] | None = None,
    timeout_s: float = 30.0,
) -> int:
    """Produce each letter's raw record back to its source topic; returns how many were acked."""
    producer = kafka.producer(bootstrap_servers, **{"acks": "all", "enable.idempotence": True})
    failures: list[str] = []

    def delivered(error: KafkaError | None, _message: object) -> None:
        if error is not None:
            failures.append(str(error))

    for letter in letters:
        if not letter.source_topic:
            raise IngestError(f"DLQ record at offset {letter.dlq_offset} has no source topic")
        producer.produce(
            letter.source_topic,
            key=letter.key,
            value=letter.value,
            headers=letter.original_headers,
            on_delivery=delivered,
        )
        producer.poll(0)
        if on_sent is not None:
            on_sent(letter)
    remaining = producer.flush(timeout_s)
    if remaining or failures:
        raise IngestError(
            f"replay: {remaining} undelivered, {len(failures)} failed: {failures[:3]}"
        )
    return len(letters)
