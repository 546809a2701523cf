"""The stack's Kafka serves what K2 relies on, through the real confluent-kafka client.

Topic creation, an idempotent `acks=all` producer, a consumer group committing offsets, and
transactions (commit and abort) on a single node: the last two need the offsets and
transaction-state topics at replication factor 1, which Kafka's defaults do not give.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from k2 import kafka
from k2.settings import Endpoints

pytestmark = pytest.mark.integration

TIMEOUT_S = 30.0
PARTITIONS = 3


def _admin(stack: Endpoints) -> AdminClient:
    return kafka.admin(stack.kafka_bootstrap_servers)


def _consume(consumer: Consumer, count: int) -> list[Message]:
    """Poll until `count` records arrived or the timeout passed."""
    records: list[Message] = []
    deadline = time.monotonic() + TIMEOUT_S
    while len(records) < count and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is None:
            continue
        if message.error() is not None:
            raise AssertionError(f"consumer error: {message.error()}")
        records.append(message)
    return records


def _deliver(producer: Producer) -> None:
    remaining = producer.flush(TIMEOUT_S)
    assert remaining == 0, f"{remaining} records not delivered within {TIMEOUT_S}s"


@pytest.fixture
def topic(stack: Endpoints, unique: str) -> Iterator[str]:
    name = f"{unique}kafka_smoke"
    admin = _admin(stack)
    admin.create_topics([NewTopic(name, num_partitions=PARTITIONS, replication_factor=1)])[
        name
    ].result(TIMEOUT_S)
    yield name
    admin.delete_topics([name])[name].result(TIMEOUT_S)


def test_created_topic_is_listed_with_its_partitions(stack: Endpoints, topic: str) -> None:
    metadata = _admin(stack).list_topics(topic, timeout=TIMEOUT_S)

    assert topic in metadata.topics
    assert metadata.topics[topic].error is None
    assert len(metadata.topics[topic].partitions) == PARTITIONS


def test_topics_are_not_created_by_producing(stack: Endpoints, unique: str) -> None:
    # Topics come from the contracts catalogue: a typo must fail, never create a topic.
    missing = f"{unique}not_in_catalogue"
    errors: list[KafkaError] = []
    producer = kafka.producer(stack.kafka_bootstrap_servers, **{"message.timeout.ms": 3000})

    def on_delivery(error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            errors.append(error)

    producer.produce(missing, value=b"x", on_delivery=on_delivery)
    producer.flush(TIMEOUT_S)

    assert len(errors) == 1
    assert missing not in _admin(stack).list_topics(timeout=TIMEOUT_S).topics


def test_idempotent_producer_and_consumer_group(stack: Endpoints, topic: str, unique: str) -> None:
    keys, per_key = 5, 20
    failures: list[KafkaError] = []
    producer = kafka.producer(
        stack.kafka_bootstrap_servers, **{"enable.idempotence": True, "acks": "all"}
    )

    def on_delivery(error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            failures.append(error)

    for seq in range(per_key):
        for key in range(keys):
            producer.produce(topic, key=f"k{key}", value=str(seq), on_delivery=on_delivery)
    _deliver(producer)
    assert failures == []

    consumer = kafka.consumer(
        stack.kafka_bootstrap_servers,
        **{
            "group.id": f"{unique}group",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        },
    )
    try:
        consumer.subscribe([topic])
        records = _consume(consumer, keys * per_key)
        consumer.commit(asynchronous=False)
        committed = consumer.committed(
            [TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=TIMEOUT_S
        )
    finally:
        consumer.close()

    assert len(records) == keys * per_key
    by_key: dict[bytes | None, list[int]] = {}
    for record in records:
        by_key.setdefault(record.key(), []).append(int(record.value() or b"-1"))
    # Each key lands on one partition, in the order it was produced, exactly once.
    assert all(seqs == list(range(per_key)) for seqs in by_key.values())
    assert len(by_key) == keys
    # The group's committed offsets cover every record: the offsets topic works.
    assert sum(tp.offset for tp in committed) == keys * per_key


def test_transactions_commit_and_abort(stack: Endpoints, topic: str, unique: str) -> None:
    producer = kafka.producer(stack.kafka_bootstrap_servers, **{"transactional.id": f"{unique}tx"})
    # Needs the transaction coordinator, i.e. __transaction_state at replication factor 1.
    producer.init_transactions(TIMEOUT_S)

    producer.begin_transaction()
    producer.produce(topic, key="k", value="aborted")
    producer.abort_transaction(TIMEOUT_S)

    producer.begin_transaction()
    for value in ("c0", "c1", "c2"):
        producer.produce(topic, key="k", value=value)
    producer.commit_transaction(TIMEOUT_S)

    consumer = kafka.consumer(
        stack.kafka_bootstrap_servers,
        **{
            "group.id": f"{unique}tx_reader",
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
        },
    )
    try:
        consumer.subscribe([topic])
        # The aborted record comes first in the log: were it visible, it would be read first.
        records = _consume(consumer, 3)
    finally:
        consumer.close()

    assert [r.value() for r in records] == [b"c0", b"c1", b"c2"]
