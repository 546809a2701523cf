"""Blocking produce against the real broker: every message in the topic, headers kept."""

from __future__ import annotations

import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.admin import NewTopic

from k2 import kafka
from k2.delivery import produce_all
from k2.settings import Endpoints

pytestmark = pytest.mark.integration


def test_every_message_is_acknowledged_and_in_the_topic(stack: Endpoints, unique: str) -> None:
    topic = f"{unique}delivery"
    admin = kafka.admin(stack.kafka_bootstrap_servers)
    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])[topic].result(60)
    # Small queue: the sends must wait for acknowledgements instead of failing (BufferError).
    producer = kafka.producer(
        stack.kafka_bootstrap_servers, **{"queue.buffering.max.messages": 100}
    )
    messages = [
        (f"k{i % 7}".encode(), f"v{i}".encode(), [("n", str(i).encode())]) for i in range(2_000)
    ]

    assert produce_all(producer, topic, messages) == 2_000

    consumer = kafka.consumer(stack.kafka_bootstrap_servers, **{"group.id": f"{unique}count"})
    try:
        ends = [
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]
            for p in range(3)
        ]
        assert sum(ends) == 2_000
        consumer.assign([TopicPartition(topic, p, 0) for p in range(3)])
        first = None
        while first is None:
            first = consumer.poll(10)
        assert first.error() is None
        headers = dict(first.headers() or [])
        assert first.value() == f"v{int(headers['n'])}".encode()
    finally:
        consumer.close()
        admin.delete_topics([topic])[topic].result(60)
