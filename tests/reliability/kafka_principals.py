"""What each Kafka principal may do on a SASL/SCRAM cluster with K2's ACLs: the checks.

Shared by the Docker cluster stack (tests/docker/test_cluster_security.py) and the local
cluster profile (tests/reliability/test_cluster_principals.py): both run the same principals
and the same ACLs (`k2stack.kafka_security`, `k2stack.kafka_acls`), so one set of checks
proves both. Clients are plain librdkafka ones built from explicit settings, never from
the process's `K2_KAFKA_*`: each check names the principal it acts as.
"""

from __future__ import annotations

import time
import uuid
from typing import Protocol

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from k2.catalog import load_catalog
from k2.contracts.catalogue import load_catalogue
from k2.ingest.config import IngestSettings
from k2.settings import CatalogPrincipal, Endpoints
from k2stack import kafka_security as sasl

from .faults_support import Lake, v2_feed, wait_until

TRADES = load_catalogue().dataset("trades")
SOURCE = TRADES.topic.name
DLQ = TRADES.dlq_topic
INGEST_GROUP = str(IngestSettings.model_fields["group_id_prefix"].default) + "acl-test"
REFUSED = (KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.GROUP_AUTHORIZATION_FAILED)


class SecuredCluster(Protocol):
    """A running SCRAM cluster with the catalogue's unprefixed topics bootstrapped."""

    @property
    def endpoints(self) -> Endpoints: ...

    def client(self, user: str | None, password: str | None = None) -> dict[str, str]:
        """librdkafka settings for `user` (None: no authentication at all)."""
        ...


def client_settings(
    bootstrap: str, passwords: dict[str, str], user: str | None, password: str | None = None
) -> dict[str, str]:
    """librdkafka settings for `user` of a cluster (None: no authentication at all)."""
    base = {"bootstrap.servers": bootstrap, "socket.timeout.ms": "5000"}
    if user is None:
        return base
    return {**base, **sasl.client_config(user, password or passwords[user])}


def _list_topics(config: dict[str, str]) -> set[str]:
    return set(AdminClient(config).list_topics(timeout=15).topics)


def _poll_error(consumer: Consumer) -> KafkaError | None:
    """The first error polling meets within 30 s (None: a message came, or nothing at all)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        message = consumer.poll(1.0)
        if message is None:
            continue
        error = message.error()
        if error is None:
            return None
        if error.code() != KafkaError._PARTITION_EOF:
            return error
    return None


def _consume_error(config: dict[str, str], topic: str, group: str) -> KafkaError | None:
    """The first error a consumer of `topic` in `group` meets (None: it read without one)."""
    consumer = Consumer(
        {**config, "group.id": group, "auto.offset.reset": "earliest", "enable.auto.commit": False}
    )
    consumer.subscribe([topic])
    try:
        error = _poll_error(consumer)
        if error is None:
            # Asking for the group's committed offsets needs Read on the group too.
            consumer.committed([TopicPartition(topic, 0)], timeout=10)
    except KafkaException as e:
        error = e.args[0]
    finally:
        consumer.close()
    return error


def _produce_error(config: dict[str, str], topic: str) -> KafkaError | None:
    failures: list[KafkaError] = []

    def delivered(error: KafkaError | None, _message: object) -> None:
        if error is not None:
            failures.append(error)

    producer = Producer({**config, "enable.idempotence": True, "acks": "all"})
    producer.produce(topic, b"not a record", on_delivery=delivered)
    left = producer.flush(30)
    assert left == 0, f"{left} messages undelivered after 30 s"
    return failures[0] if failures else None


def check_unauthenticated_and_wrong_clients_refused(cluster: SecuredCluster) -> None:
    with pytest.raises(KafkaException):
        _list_topics(cluster.client(None))
    with pytest.raises(KafkaException):
        _list_topics(cluster.client(sasl.ADMIN.user, "wrong-password-0123456789"))
    assert SOURCE in _list_topics(cluster.client(sasl.ADMIN.user))


def check_producer_writes_sources_and_reads_nothing(cluster: SecuredCluster) -> None:
    producer = cluster.client(sasl.PRODUCER.user)
    assert _produce_error(producer, SOURCE) is None
    refused = _produce_error(producer, DLQ)
    assert refused is not None and refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    for topic in (DLQ, SOURCE):
        error = _consume_error(producer, topic, INGEST_GROUP)
        assert error is not None and error.code() in REFUSED, (topic, error)


def check_ingest_reads_sources_and_writes_only_dlqs(cluster: SecuredCluster) -> None:
    ingest = cluster.client(sasl.INGEST.user)
    assert _consume_error(ingest, SOURCE, INGEST_GROUP) is None
    # Only in the ingest workers' own groups.
    error = _consume_error(ingest, SOURCE, "someone-elses-group")
    assert error is not None and error.code() == KafkaError.GROUP_AUTHORIZATION_FAILED
    assert _produce_error(ingest, DLQ) is None
    refused = _produce_error(ingest, SOURCE)
    assert refused is not None and refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    # No topic administration.
    admin = AdminClient(ingest)  # kept referenced until the result is in
    created = admin.create_topics([NewTopic("k2.acl-test", 1, 3)])
    with pytest.raises(KafkaException) as caught:
        created["k2.acl-test"].result(timeout=30)
    assert caught.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def check_workers_land_what_the_producer_wrote(cluster: SecuredCluster) -> None:
    """The ingest principal's whole job, end to end: running workers that hold only the ingest
    principal's Kafka and catalog credentials commit what the producer principal wrote."""
    with load_catalog(cluster.endpoints, CatalogPrincipal.QUERY) as catalog:
        lake = Lake(cluster.endpoints, "", TRADES, catalog)
        feed = v2_feed(lake, f"acl{uuid.uuid4().hex[:6]}", 300)
        producer = Producer(
            {**cluster.client(sasl.PRODUCER.user), "enable.idempotence": True, "acks": "all"}
        )
        for key, value in feed.messages:
            producer.produce(SOURCE, key=key, value=value)
        assert producer.flush(60) == 0
        wanted = set(feed.ids)
        wait_until(lambda: wanted <= set(lake.trade_ids()), 180, "the produced trades in Iceberg")
        assert sorted(i for i in lake.trade_ids() if i in wanted) == sorted(wanted)
