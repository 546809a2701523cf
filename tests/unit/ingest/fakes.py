"""In-memory source, sink and DLQ for the ingest loop's unit tests (the seam of issue 13).

They follow the protocols of `k2.ingest.ports`, nothing more: the loop under test is the real
`IngestWorker` with a real decoder, validator, dedup and batcher.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence

import pyarrow as pa
from confluent_kafka import OFFSET_BEGINNING

from k2.ingest.batcher import PendingBatch
from k2.ingest.dlq import DeadLetter
from k2.ingest.sink import CommitOutcome
from k2.ingest.source import AssignCallback, RawMessage, RevokeCallback, TopicPartitionKey

from .helpers import TOPIC, Msg

IDENTITY = ("exchange", "symbol", "trade_id", "event_time")


class FakeSource:
    """A topic's partitions as lists of messages; the test decides assignment."""

    def __init__(self, log: Mapping[int, list[Msg]]) -> None:
        self.log = {p: list(msgs) for p, msgs in log.items()}
        self.positions: dict[int, int] = {}
        self.paused = False
        self.pauses = 0
        self.group_commits: list[dict[TopicPartitionKey, int]] = []
        self.closed = False
        self.handed_over: bool | None = None
        self.when_drained: Callable[[], None] | None = None
        self._on_assign: AssignCallback | None = None
        self._on_revoke: RevokeCallback | None = None

    def subscribe(self, on_assign: AssignCallback, on_revoke: RevokeCallback) -> None:
        self._on_assign, self._on_revoke = on_assign, on_revoke

    def assign(self, partitions: Sequence[int]) -> None:
        assert self._on_assign is not None
        starts = self._on_assign([(TOPIC, p) for p in partitions])
        for (_topic, p), start in starts.items():
            self.positions[p] = 0 if start is None else start

    def revoke(self, partitions: Sequence[int], lost: bool = False) -> None:
        assert self._on_revoke is not None
        self._on_revoke([(TOPIC, p) for p in partitions], lost)
        for p in partitions:
            self.positions.pop(p, None)

    def poll(self, max_messages: int, timeout_s: float) -> list[RawMessage]:
        out: list[RawMessage] = []
        if not self.paused:
            for p in sorted(self.positions):
                room = max_messages - len(out)
                if room <= 0:
                    break
                take = self.log.get(p, [])[self.positions[p] : self.positions[p] + room]
                out.extend(take)
                self.positions[p] += len(take)
        if not out and self.when_drained is not None and not self.paused:
            self.when_drained()
        return out

    def seek(self, positions: dict[TopicPartitionKey, int]) -> None:
        for (_topic, p), offset in positions.items():
            if p in self.positions:
                self.positions[p] = 0 if offset == OFFSET_BEGINNING else offset

    def pause_all(self) -> None:
        self.paused = True
        self.pauses += 1

    def resume_all(self) -> None:
        self.paused = False

    def commit_group_offsets(self, positions: dict[TopicPartitionKey, int]) -> None:
        self.group_commits.append(dict(positions))

    def close(self, hand_over: bool = True) -> None:
        self.revoke(sorted(self.positions))
        self.closed = True
        self.handed_over = hand_over


class FakeSink:
    """A table: rows, per-partition next offsets, one commit at a time."""

    def __init__(self, events: list[str]) -> None:
        self.events = events
        self.offsets: dict[TopicPartitionKey, int] = {}
        self.rows: list[pa.RecordBatch] = []
        self.steal: dict[TopicPartitionKey, int] = {}  # another writer moves these first
        self.gate: threading.Event | None = None  # set: commits wait for it (a stalled catalog)
        self.closed = False

    def recorded_offsets(self, topic: str) -> dict[TopicPartitionKey, int]:
        return {tp: o for tp, o in self.offsets.items() if tp[0] == topic}

    def identities(self, days: Mapping[int, Sequence[str]], id_column: str) -> pa.Table:
        if not self.rows:
            return pa.table({c: pa.array([], pa.string()) for c in IDENTITY[:3]}).append_column(
                "event_time", pa.array([], pa.timestamp("us", tz="UTC"))
            )
        return pa.Table.from_batches([r.select(list(IDENTITY)) for r in self.rows])

    def required_columns(self) -> frozenset[str]:
        return frozenset(IDENTITY)

    def commit(self, pending: PendingBatch) -> CommitOutcome:
        if self.gate is not None:
            self.gate.wait(10)
        self.events.append("commit")
        outcome = CommitOutcome()
        for tp, batch in pending.partitions.items():
            if tp in self.steal:
                self.offsets[tp] = self.steal.pop(tp)
            recorded = self.offsets.get(tp)
            if recorded != batch.start:
                outcome.dropped[tp] = recorded
                continue
            assert batch.end is not None
            self.offsets[tp] = batch.end
            self.rows.extend(rows for _writer, rows in batch.rows)
            outcome.committed[tp] = batch
        return outcome

    def trade_ids(self) -> list[str]:
        return [str(v) for r in self.rows for v in r.column("trade_id").to_pylist()]

    def close(self) -> None:
        self.closed = True


class FakeDlq:
    """Dead letters kept in memory; `fail` makes the next send raise."""

    def __init__(self, events: list[str]) -> None:
        self.events = events
        self.letters: list[DeadLetter] = []
        self.fail: Exception | None = None
        self.closed = False

    def send(self, letters: Sequence[DeadLetter]) -> None:
        if self.fail is not None and letters:
            raise self.fail
        if letters:
            self.events.append(f"dlq {len(letters)}")
        self.letters.extend(letters)

    def close(self) -> None:
        self.closed = True
