"""Kafka SASL/SCRAM + ACLs and the authenticated catalog, for real, on the Docker cluster stack.

The module brings up its own `cluster` stack (three brokers, SCRAM, ACLs from the catalogue,
the authenticated Iceberg catalog) under a unique name prefix and a free block of host ports,
and destroys it at the end. Each principal is tried with real clients: an unauthenticated or
wrongly authenticated client is refused, the producer can write the source topics and read
nothing, the ingest principal reads the source topics (in its own groups) and writes only the
DLQs, and the stack's own ingest workers, holding only the ingest principal's credentials, land
what the producer wrote in Iceberg.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import docker
import httpx
import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from k2.catalog import load_catalog
from k2.contracts.catalogue import load_catalogue
from k2.ingest.config import IngestSettings
from k2.settings import CatalogPrincipal, Endpoints
from k2stack import kafka_security as sasl
from k2stack.catalog_auth import fetch_token
from k2stack.docker.spec import STACK_LABEL
from k2stack.pulumi import automation
from k2stack.pulumi.stacks import REPO_ROOT, free_port_offset, up_committed
from tests.reliability.faults_support import Lake, v2_feed, wait_until

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]

TRADES = load_catalogue().dataset("trades")
SOURCE = TRADES.topic.name
DLQ = TRADES.dlq_topic
INGEST_GROUP = str(IngestSettings.model_fields["group_id_prefix"].default) + "acl-test"
REFUSED = (KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.GROUP_AUTHORIZATION_FAILED)


@dataclass(frozen=True)
class Cluster:
    name: str
    endpoints: Endpoints
    bootstrap: str
    passwords: dict[str, str]  # SCRAM user -> password

    def client(self, user: str | None, password: str | None = None) -> dict[str, str]:
        """librdkafka settings for `user` (None: no authentication at all)."""
        base = {"bootstrap.servers": self.bootstrap, "socket.timeout.ms": "5000"}
        if user is None:
            return base
        return {**base, **sasl.client_config(user, password or self.passwords[user])}


def _scram_passwords(prefix: str) -> dict[str, str]:
    """Each principal's password, as the brokers were given it (their container env)."""
    client = docker.DockerClient(base_url=os.environ.get("DOCKER_HOST"), version="auto")
    try:
        broker = client.containers.get(f"{prefix}-kafka-0")
        env = dict(item.split("=", 1) for item in broker.attrs["Config"]["Env"])
    finally:
        client.close()
    return {
        p.user: env[f"K2_SERVE_KAFKA_SCRAM_{p.user.removeprefix('k2-').upper()}_PASSWORD"]
        for p in sasl.PRINCIPALS
    }


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    run_id = uuid.uuid4().hex[:6]
    prefix = f"k2sec-{run_id}"
    base = automation.read_config_file(automation.committed_config_file("cluster", REPO_ROOT))
    # Grafana's upstream image cannot be had here; one worker per table is enough to prove
    # the ingest principal's job and keeps the stack small beside the ci stack.
    overrides = {"k2:grafana": "false", "k2:namePrefix": prefix, "k2:workerReplicas": "1"}
    secrets = automation.generated_secrets(automation.required_secret_keys(base))
    overrides["k2:portOffset"] = str(free_port_offset("cluster", {**base, **overrides}, secrets))
    name = f"cluster-{run_id}"
    try:
        name, outputs = up_committed("cluster", run_id, overrides=overrides)
        endpoints = Endpoints.from_env(outputs)
        yield Cluster(name, endpoints, endpoints.kafka_bootstrap_servers, _scram_passwords(prefix))
    finally:
        automation.destroy(name)
        client = docker.DockerClient(base_url=os.environ.get("DOCKER_HOST"), version="auto")
        left = client.containers.list(all=True, filters={"label": f"{STACK_LABEL}={prefix}"})
        client.close()
        assert left == [], [c.name for c in left]


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


def test_an_unauthenticated_or_wrong_kafka_client_is_refused(cluster: Cluster) -> None:
    with pytest.raises(KafkaException):
        _list_topics(cluster.client(None))
    with pytest.raises(KafkaException):
        _list_topics(cluster.client(sasl.ADMIN.user, "wrong-password-0123456789"))
    assert SOURCE in _list_topics(cluster.client(sasl.ADMIN.user))


def test_the_producer_writes_source_topics_and_reads_nothing(cluster: Cluster) -> None:
    producer = cluster.client(sasl.PRODUCER.user)
    assert _produce_error(producer, SOURCE) is None
    refused = _produce_error(producer, DLQ)
    assert refused is not None and refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    for topic in (DLQ, SOURCE):
        error = _consume_error(producer, topic, INGEST_GROUP)
        assert error is not None and error.code() in REFUSED, (topic, error)


def test_the_ingest_principal_reads_sources_and_writes_only_dlqs(cluster: Cluster) -> None:
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


def test_the_stacks_workers_land_what_the_producer_wrote(cluster: Cluster) -> None:
    """The ingest principal's whole job, end to end: the stack's workers (only the ingest
    principal's Kafka and catalog credentials in their env) commit what the producer wrote."""
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


def test_the_clusters_catalog_requires_a_token(cluster: Cluster) -> None:
    uri = cluster.endpoints.iceberg_catalog_uri
    assert httpx.get(f"{uri}/v1/config", timeout=10).status_code == 401
    token = fetch_token(uri, cluster.endpoints.catalog_credential(CatalogPrincipal.QUERY))
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{uri}/v1/config", headers=headers, timeout=10).status_code == 200
    namespace = TRADES.table_identifier[0]
    dropped = httpx.delete(
        f"{uri}/v1/namespaces/{namespace}/tables/{TRADES.table_identifier[1]}",
        headers=headers,
        timeout=10,
    )
    assert dropped.status_code == 403
