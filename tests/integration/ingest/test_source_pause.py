"""Backpressure and rebalances on a real Kafka: a partition that leaves while the worker is
paused is fetched again when it comes back.

librdkafka keeps a partition's pause across unassign, and `resume_all` resumes only what is
still assigned; before `KafkaSource` cleared it on the way out, a partition revoked during
backpressure and later assigned back was never fetched (a zombie member in CI sat on two such
partitions for 10 minutes).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from confluent_kafka.admin import NewTopic

from k2 import kafka
from k2.ingest.source import KafkaSource, TopicPartitionKey
from k2.settings import Endpoints

pytestmark = pytest.mark.integration

WAIT_S = 60.0


class Member:
    """A KafkaSource with what it currently owns and what it has read."""

    def __init__(self, stack: Endpoints, group: str, topic: str) -> None:
        self.owned: set[TopicPartitionKey] = set()
        self.read: list[tuple[int, bytes]] = []
        self.source = KafkaSource(
            stack.kafka_bootstrap_servers, group, topic, session_timeout_ms=6_000
        )
        self.source.subscribe(self._assigned, self._revoked)

    def _assigned(self, tps: list[TopicPartitionKey]) -> dict[TopicPartitionKey, int | None]:
        self.owned.update(tps)
        return {tp: None for tp in tps}  # from the beginning

    def _revoked(self, tps: list[TopicPartitionKey], _lost: bool) -> None:
        self.owned.difference_update(tps)

    def poll(self) -> None:
        for message in self.source.poll(100, 0.2):
            self.read.append((int(message.partition() or 0), bytes(message.value() or b"")))


def _until(members: list[Member], done: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        for member in members:
            member.poll()
        if done():
            return
    raise AssertionError(f"not within {WAIT_S:.0f}s: {what}")


def test_a_partition_revoked_while_paused_is_fetched_when_it_comes_back(
    stack: Endpoints, unique: str
) -> None:
    topic, group = f"{unique}pause", f"{unique}group"
    admin = kafka.admin(stack.kafka_bootstrap_servers)
    admin.create_topics([NewTopic(topic, 2, 1)])[topic].result(30)
    producer = kafka.producer(stack.kafka_bootstrap_servers)

    def produce(tag: str) -> None:
        for partition in (0, 1):
            producer.produce(topic, value=f"{tag}-{partition}".encode(), partition=partition)
        assert producer.flush(30) == 0

    produce("before")
    first = Member(stack, group, topic)
    _until([first], lambda: len(first.owned) == 2, "the first member owns both partitions")
    first.source.pause_all()  # backpressure: a full batch waits for its commit
    second = Member(stack, group, topic)
    _until(
        [first, second],
        lambda: len(first.owned) == 1 and len(second.owned) == 1,
        "one partition moved to the second member while the first was paused",
    )
    (moved,) = second.owned
    first.source.resume_all()  # the commit landed
    second.source.close()  # a dynamic member leaves: the partition comes back
    _until([first], lambda: len(first.owned) == 2, "the partition came back to the first member")
    produce("after")
    _until(
        [first],
        lambda: (moved[1], f"after-{moved[1]}".encode()) in first.read,
        f"the first member read partition {moved[1]} again",
    )
    first.source.close()
