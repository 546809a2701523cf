"""The Kafka source: consume in chunks, seek to the table's offsets on assignment, pause/resume.

The table, not the consumer group, is the source of truth for positions: on assignment the
worker is asked where each partition starts (`on_assign` returns the offsets). Group offsets
are committed only after Iceberg, for lag monitoring.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, Protocol

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from k2 import kafka
from k2.ingest.errors import IngestError
from k2.ingest.identity import WorkerIdentity
from k2.ingest.leave import leave_group

log = logging.getLogger(__name__)

TopicPartitionKey = tuple[str, int]
Headers = dict[str, str | bytes | None] | list[tuple[str, str | bytes | None]] | None


class RawMessage(Protocol):
    """What the pipeline needs of a consumed message (confluent_kafka.Message has it)."""

    def topic(self) -> str | None: ...
    def partition(self) -> int | None: ...
    def offset(self) -> int | None: ...
    def value(self) -> bytes | None: ...
    def key(self) -> bytes | None: ...
    def headers(self) -> Headers: ...
    def timestamp(self) -> tuple[int, int]: ...


AssignCallback = Callable[[list[TopicPartitionKey]], dict[TopicPartitionKey, int | None]]
RevokeCallback = Callable[[list[TopicPartitionKey], bool], None]
LagCallback = Callable[[str, int, int], None]
# librdkafka reports per-partition lag in its statistics (from the high watermarks its fetches
# already carry), so lag costs no broker round trip on the commit path.
STATS_INTERVAL_MS = 5_000
HEARTBEAT_MS = 500
FETCH_QUEUE_BACKOFF_MS = 10


class KafkaSource:
    """A consumer-group member for one topic."""

    def __init__(
        self,
        bootstrap_servers: str,
        group_id: str,
        topic: str,
        *,
        session_timeout_ms: int = 10_000,
        max_poll_interval_ms: int = 300_000,
        queued_max_kbytes: int = 1_024,
        on_lag: LagCallback | None = None,
        identity: WorkerIdentity | None = None,
    ) -> None:
        self._topic = topic
        self._bootstrap_servers = bootstrap_servers
        self._group_id = group_id
        self._on_assign: AssignCallback | None = None
        self._on_revoke: RevokeCallback | None = None
        self._on_lag = on_lag
        self._paused = False
        config: dict[str, Any] = {
            "group.id": group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "partition.assignment.strategy": "cooperative-sticky",
            "session.timeout.ms": session_timeout_ms,
            "max.poll.interval.ms": max_poll_interval_ms,
            # A member that owns nothing learns of a rebalance from its next heartbeat: at the
            # default 3 s, a worker joining a busy group waited ~3 s for its partitions.
            "heartbeat.interval.ms": min(HEARTBEAT_MS, session_timeout_ms // 3),
            # The prefetch queue bounds the worker's memory: librdkafka holds up to this much
            # per partition ahead of the application.
            "fetch.max.bytes": min(64 * 1024 * 1024, queued_max_kbytes * 1024),
            "max.partition.fetch.bytes": min(64 * 1024 * 1024, queued_max_kbytes * 1024),
            # When the queue is full librdkafka postpones the partition's next fetch by this
            # much (default 1000 ms): with a small queue the worker then sat idle most of each
            # second. Measured, 1.5M records read with a 2 MiB queue: 1.4 s at 10 ms; 8.4 s with
            # an 8 MiB queue at the default, and ~70 MB more RSS.
            "fetch.queue.backoff.ms": FETCH_QUEUE_BACKOFF_MS,
            "queued.max.messages.kbytes": queued_max_kbytes,
            "client.id": group_id,
        }
        self._identity = identity
        if identity is not None:
            # Static membership: a restart with the same id resumes its partitions at once.
            config["group.instance.id"] = identity.instance_id
        if on_lag is not None:
            config["statistics.interval.ms"] = STATS_INTERVAL_MS
            config["stats_cb"] = self._stats
        self._consumer = kafka.consumer(bootstrap_servers, **config)

    def subscribe(self, on_assign: AssignCallback, on_revoke: RevokeCallback) -> None:
        """Join the group (in librdkafka's threads from here on); the callbacks run inside
        `poll` and `close`, on the caller's thread."""
        self._on_assign = on_assign
        self._on_revoke = on_revoke
        self._consumer.subscribe(
            [self._topic], on_assign=self._assigned, on_revoke=self._revoked, on_lost=self._lost
        )

    def _assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        keys = [(tp.topic, tp.partition) for tp in partitions]
        starts = self._on_assign(keys) if self._on_assign else {}
        positioned = []
        for tp in partitions:
            start = starts.get((tp.topic, tp.partition))
            positioned.append(
                TopicPartition(tp.topic, tp.partition, OFFSET_BEGINNING if start is None else start)
            )
        consumer.incremental_assign(positioned)
        if self._paused:
            consumer.pause(positioned)

    def _revoked(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if self._on_revoke:
            self._on_revoke([(tp.topic, tp.partition) for tp in partitions], False)
        consumer.incremental_unassign(partitions)
        self._unpause_leaving(consumer, partitions)

    def _lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if self._on_revoke:
            self._on_revoke([(tp.topic, tp.partition) for tp in partitions], True)
        consumer.incremental_unassign(partitions)
        self._unpause_leaving(consumer, partitions)

    def _unpause_leaving(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """librdkafka keeps a partition's pause across unassign (confluentinc/librdkafka#1849),
        and `resume_all` resumes only what is still assigned: a partition revoked while paused
        and assigned to this worker again later was never fetched (seen in CI: a zombie member's
        two re-assigned partitions idle for 10 minutes). Unassigned first, so nothing fetches."""
        if not self._paused:
            return
        try:
            consumer.resume(partitions)
        except KafkaException:
            return  # unknown to the client any more: nothing of it stays paused

    def poll(self, max_messages: int, timeout_s: float) -> list[RawMessage]:
        """Up to `max_messages` messages; transport errors are raised, EOFs skipped."""
        messages = self._consumer.consume(num_messages=max_messages, timeout=timeout_s)
        good: list[RawMessage] = []
        for message in messages:
            error = message.error()
            if error is None:
                good.append(message)
            elif error.code() != KafkaError._PARTITION_EOF and error.fatal():
                raise IngestError(f"fatal Kafka error: {error}")
            # Other errors are retriable transport errors: librdkafka reconnects by itself.
        return good

    def seek(self, positions: dict[TopicPartitionKey, int]) -> None:
        """Rewind partitions (after a dropped batch) to the table's recorded offsets."""
        for (topic, partition), offset in positions.items():
            try:
                self._consumer.seek(TopicPartition(topic, partition, offset))
            except KafkaException:
                # Not assigned any more: the new owner starts from the table's offset anyway.
                continue

    def pause_all(self) -> None:
        """Backpressure: stop fetching until `resume_all`."""
        if not self._paused:
            self._consumer.pause(self._consumer.assignment())
            self._paused = True

    def resume_all(self) -> None:
        """Fetch again after the sink caught up."""
        if self._paused:
            self._consumer.resume(self._consumer.assignment())
            self._paused = False

    @property
    def paused(self) -> bool:
        """Whether fetching is paused by backpressure."""
        return self._paused

    def commit_group_offsets(self, positions: dict[TopicPartitionKey, int]) -> None:
        """Record progress in the group for lag monitoring only (asynchronous, best effort)."""
        if not positions:
            return
        offsets = [TopicPartition(t, p, o) for (t, p), o in positions.items()]
        try:
            self._consumer.commit(offsets=offsets, asynchronous=True)
        except KafkaException:
            return  # lag monitoring only: the table holds the truth

    def _stats(self, stats_json: str) -> None:
        """Per-partition consumer lag from librdkafka's statistics (-1: not known yet)."""
        if self._on_lag is None:
            return
        try:
            partitions = json.loads(stats_json)["topics"][self._topic]["partitions"]
        except (ValueError, KeyError, TypeError):
            return
        for key, stats in partitions.items():
            lag = stats.get("consumer_lag", -1) if isinstance(stats, dict) else -1
            if key.isdigit() and isinstance(lag, int) and lag >= 0:
                self._on_lag(self._topic, int(key), lag)

    def close(self, hand_over: bool = True) -> None:
        """Close the consumer (a final revoke, which flushes) and give the identity back.

        A dynamic member leaves the group as it closes. A static one leaves only with
        `hand_over` (k2.ingest.leave): a stop on purpose moves its partitions at once, while a
        failing worker keeps them for its restart (its session timeout frees them otherwise).
        The slot is released only after leaving: a new process on this host cannot have
        taken the instance id in between.
        """
        member_id = self._consumer.memberid() if hand_over and self._identity else None
        try:
            self._consumer.close()
            if member_id and self._identity is not None:
                departure = leave_group(
                    self._bootstrap_servers, self._group_id, self._identity.instance_id, member_id
                )
                log.info("group departure", extra={"k2": {"departure": asdict(departure)}})
        finally:
            if self._identity is not None:
                self._identity.release()
