"""The dead-letter queue: raw bytes plus headers saying where they came from and why.

Dead letters are produced and flushed (acks=all, idempotent) before the Iceberg commit that
moves the table's offsets past them, so a record is always either in the table or in the DLQ.
A replayed batch may dead-letter the same record twice: the source headers identify it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError

from k2 import kafka
from k2.ingest.errors import DlqBudgetExceededError, DlqDeliveryError
from k2.ingest.source import RawMessage

HEADER_SOURCE_TOPIC = "k2.source.topic"
HEADER_SOURCE_PARTITION = "k2.source.partition"
HEADER_SOURCE_OFFSET = "k2.source.offset"
HEADER_ERROR_CLASS = "k2.error.class"
HEADER_REASON = "k2.error.reason"
HEADER_DETAIL = "k2.error.detail"
DLQ_HEADERS = frozenset(
    {
        HEADER_SOURCE_TOPIC,
        HEADER_SOURCE_PARTITION,
        HEADER_SOURCE_OFFSET,
        HEADER_ERROR_CLASS,
        HEADER_REASON,
        HEADER_DETAIL,
    }
)
MAX_DETAIL = 1_000
# Reasons that are not a sign of a bad deploy: they do not count against the budget.
BUDGET_EXEMPT = frozenset({"duplicate"})


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One record routed to the DLQ."""

    message: RawMessage
    reason: str
    error_class: str
    detail: str

    def headers(self) -> list[tuple[str, str | bytes | None]]:
        """The original headers plus K2's provenance and error headers."""
        raw = self.message.headers() or []
        pairs = list(raw.items()) if isinstance(raw, dict) else raw
        original = [(k, v) for k, v in pairs if k not in DLQ_HEADERS]
        return [
            *original,
            (HEADER_SOURCE_TOPIC, str(self.message.topic()).encode()),
            (HEADER_SOURCE_PARTITION, str(self.message.partition()).encode()),
            (HEADER_SOURCE_OFFSET, str(self.message.offset()).encode()),
            (HEADER_ERROR_CLASS, self.error_class.encode()),
            (HEADER_REASON, self.reason.encode()),
            (HEADER_DETAIL, self.detail[:MAX_DETAIL].encode(errors="replace")),
        ]


def dlq_producer_config() -> dict[str, Any]:
    """A durable producer: every dead letter acknowledged by all in-sync replicas."""
    return {
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 5,
        "message.max.bytes": 16 * 1024 * 1024,
    }


class DlqWriter:
    """Produces dead letters to one DLQ topic and waits until they are durable."""

    def __init__(self, bootstrap_servers: str, topic: str) -> None:
        self._topic = topic
        self._producer = kafka.producer(bootstrap_servers, **dlq_producer_config())
        self._failures: list[str] = []

    @property
    def topic(self) -> str:
        """The DLQ topic."""
        return self._topic

    def _delivered(self, error: KafkaError | None, _message: Any) -> None:
        if error is not None:
            self._failures.append(str(error))

    def send(self, letters: Sequence[DeadLetter], timeout_s: float = 30.0) -> None:
        """Produce `letters` and flush; DlqDeliveryError unless every one was acknowledged."""
        if not letters:
            return
        self._failures = []
        for letter in letters:
            while True:
                try:
                    self._producer.produce(
                        self._topic,
                        value=letter.message.value(),
                        key=letter.message.key(),
                        headers=letter.headers(),
                        on_delivery=self._delivered,
                    )
                    break
                except BufferError:
                    self._producer.poll(0.1)  # local queue full: let deliveries drain
        remaining = self._producer.flush(timeout_s)
        if remaining or self._failures:
            raise DlqDeliveryError(
                f"{remaining} dead letters undelivered, {len(self._failures)} failed:"
                f" {self._failures[:3]}"
            )

    def close(self) -> None:
        """Flush what is left."""
        self._producer.flush(10.0)


class DlqBudget:
    """Stops the worker when more than `max_ratio` of the last `window` records were invalid."""

    def __init__(self, max_ratio: float, window: int, min_records: int) -> None:
        self._max_ratio = max_ratio
        self._window = window
        self._min_records = min_records
        self._chunks: deque[tuple[int, int]] = deque()
        self._consumed = 0
        self._invalid = 0

    def record(self, consumed: int, letters: Sequence[DeadLetter]) -> None:
        """Account one poll chunk; raises DlqBudgetExceededError when the ratio is over budget."""
        invalid = sum(1 for letter in letters if letter.reason not in BUDGET_EXEMPT)
        self._chunks.append((consumed, invalid))
        self._consumed += consumed
        self._invalid += invalid
        while len(self._chunks) > 1 and self._consumed - self._chunks[0][0] >= self._window:
            old_consumed, old_invalid = self._chunks.popleft()
            self._consumed -= old_consumed
            self._invalid -= old_invalid
        if self._consumed >= self._min_records and self.ratio > self._max_ratio:
            raise DlqBudgetExceededError(
                f"{self._invalid} of the last {self._consumed} records were invalid"
                f" ({self.ratio:.1%} > {self._max_ratio:.1%}): stopping"
            )

    @property
    def ratio(self) -> float:
        """Invalid share of the current window."""
        return self._invalid / self._consumed if self._consumed else 0.0
