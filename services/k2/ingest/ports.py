"""What the ingest loop needs of its source, sink and dead-letter queue: small protocols.

`KafkaSource`, `IcebergSink` and `DlqWriter` implement them for real; the loop's unit tests
drive it through in-memory fakes (assign/revoke, dropped batches, DLQ-before-commit,
shutdown) in milliseconds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import pyarrow as pa

from k2.ingest.batcher import PendingBatch
from k2.ingest.dlq import DeadLetter
from k2.ingest.sink import CommitOutcome
from k2.ingest.source import AssignCallback, RawMessage, RevokeCallback, TopicPartitionKey


class Source(Protocol):
    """A consumer-group member for one topic (positions come from the sink, not the group)."""

    def subscribe(self, on_assign: AssignCallback, on_revoke: RevokeCallback) -> None:
        """Join the group; `on_assign` returns where each assigned partition starts."""

    def poll(self, max_messages: int, timeout_s: float) -> list[RawMessage]:
        """Up to `max_messages` messages."""

    def seek(self, positions: dict[TopicPartitionKey, int]) -> None:
        """Rewind partitions (after a dropped batch)."""

    @property
    def paused(self) -> bool:
        """Whether every partition is paused."""

    def pause_all(self) -> None:
        """Stop fetching every partition."""

    def resume_all(self) -> None:
        """Fetch again."""

    def commit_group_offsets(self, positions: dict[TopicPartitionKey, int]) -> None:
        """Progress for lag monitoring only."""

    def close(self, hand_over: bool = True) -> None:
        """Leave the group (revokes, which flushes); a static member only with `hand_over`."""


class Sink(Protocol):
    """One table: rows and the offsets they cover land in one commit."""

    def recorded_offsets(self, topic: str) -> dict[TopicPartitionKey, int]:
        """The table's next offset per partition (fresh)."""

    def identities(self, days: Mapping[int, Sequence[str]], id_column: str) -> pa.Table:
        """Identity columns of the committed rows of `days`' symbols."""

    def required_columns(self) -> frozenset[str]:
        """Columns that cannot hold a null."""

    def commit(self, pending: PendingBatch) -> CommitOutcome:
        """Commit `pending`, or the part of it this writer still owns."""

    def close(self) -> None:
        """Release the catalog session."""


class DeadLetters(Protocol):
    """The dataset's DLQ: `send` returns once every letter is durable."""

    def send(self, letters: Sequence[DeadLetter]) -> None:
        """Produce and wait for acknowledgement."""

    def close(self) -> None:
        """Flush and release the producer."""
