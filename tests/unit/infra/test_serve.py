"""`k2-stack serve`'s launcher context, built from the `K2_SERVE_*` env a container spec sets."""

from __future__ import annotations

import base64
import os
from typing import Any

import pytest

from k2stack.docker import aliases
from k2stack.docker.spec import ContainerSpec
from k2stack.docker.stack_spec import stack_spec
from k2stack.local.context import KafkaListener, StackContext
from k2stack.local.services.kafka import server_properties
from k2stack.pulumi.config import StackConfig
from k2stack.serve import CONTAINER_STATE_DIR, SERVE_ENV_PREFIX, ServeSettings, container_context
from k2stack.topology import ServiceName
from tests.unit.infra.nodes import cluster_broker_1

# Test values, not credentials.
SECRETS = {
    "postgresPassword": "pg-secret-0123456789",
    "s3AccessKeyId": "k2-access",
    "s3SecretAccessKey": "s3-secret-0123456789",
    "grafanaAdminPassword": "grafana-secret-0123",
    "registryPassword": "registry-secret-0123456789",
    "kafkaAdminPassword": "kafka-admin-secret-0123",
    "kafkaIngestPassword": "kafka-ingest-secret-0123",
    "kafkaProducerPassword": "kafka-producer-secret-0123",
    "catalogTokenKey": "catalog-token-key-0123456789",
    "catalogAdminSecret": "catalog-admin-secret-0123",
    "catalogIngestSecret": "catalog-ingest-secret-0123",
    "catalogMaintainSecret": "catalog-maintain-secret-0123",
    "catalogQuerySecret": "catalog-query-secret-0123",
}


def cluster(**overrides: Any) -> StackConfig:
    """The cluster stack's config (Pulumi.cluster.yaml)."""
    values: dict[str, Any] = {
        "namePrefix": "k2-cluster",
        "kafkaBrokers": 3,
        "replicationFactor": 3,
        "minInsyncReplicas": 2,
        "workerReplicas": 3,
        "kafkaSecurity": "scram",
        **SECRETS,
        **overrides,
    }
    return StackConfig.model_validate(values)


def served(monkeypatch: pytest.MonkeyPatch, container: ContainerSpec) -> StackContext:
    """The context `k2-stack serve` builds inside `container` (its env, nothing else)."""
    for name in [n for n in os.environ if n.startswith(SERVE_ENV_PREFIX)]:
        monkeypatch.delenv(name)
    assert all(k.startswith(SERVE_ENV_PREFIX) for k in container.env)
    for name, value in container.env.items():
        monkeypatch.setenv(name, value)
    return container_context(ServeSettings())


def test_a_broker_of_the_cluster_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    config = cluster()
    broker = stack_spec(config, "1.0").container("kafka-1")
    ctx = served(monkeypatch, broker)
    passwords = {
        "k2-admin": SECRETS["kafkaAdminPassword"],
        "k2-ingest": SECRETS["kafkaIngestPassword"],
        "k2-producer": SECRETS["kafkaProducerPassword"],
    }
    assert ctx.kafka == cluster_broker_1(passwords, config.kafka_cluster_id)
    assert ctx.hosts == aliases.in_network_hosts() == {s: s.value for s in ServiceName}
    assert ctx.ports == aliases.in_network_ports()
    assert ctx.bind_host == "0.0.0.0"
    assert ctx.state_dir == CONTAINER_STATE_DIR
    # What the broker's launcher then writes: advertised on its alias and on the host.
    props = server_properties(ctx)
    assert props["advertised.listeners"] == "INTERNAL://kafka-1:9092,EXTERNAL://127.0.0.1:19192"
    assert props["controller.quorum.voters"].count("@kafka-") == 3


def test_a_broker_listens_on_its_external_port_shifted_by_the_offset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    broker = stack_spec(cluster(portOffset=2000), "1.0").container("kafka-2")
    ctx = served(monkeypatch, broker)
    assert ctx.kafka is not None
    assert ctx.kafka.listeners[1] == KafkaListener("EXTERNAL", 21292, "127.0.0.1")
    assert [(p.container_port, p.host_port) for p in broker.ports] == [(21292, 21292)]


def test_a_broker_without_scram_or_published_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    config = cluster(kafkaSecurity="none", publishPorts=False)
    ctx = served(monkeypatch, stack_spec(config, "1.0").container("kafka-0"))
    assert ctx.kafka is not None
    assert ctx.kafka.scram_passwords is None
    assert ctx.kafka.listeners == (KafkaListener("INTERNAL", 9092, "kafka-0"),)


def test_the_registry_gets_its_basic_auth_user(monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = served(monkeypatch, stack_spec(cluster(), "1.0").container("registry"))
    assert ctx.credentials.registry_basic_auth() == ("k2registry", SECRETS["registryPassword"])
    assert ctx.credentials.postgres_password == SECRETS["postgresPassword"]
    # Each service is given only the secrets it uses.
    assert ctx.credentials.s3_secret_access_key == ""
    assert ctx.kafka is not None and ctx.kafka.scram_passwords is None
    assert ctx.credentials.catalog_token_key is None
    assert dict(ctx.credentials.catalog_secrets) == {}


def test_the_catalog_gets_its_signing_key_and_every_principal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ctx = served(monkeypatch, stack_spec(cluster(), "1.0").container("iceberg-rest"))
    assert ctx.credentials.catalog_token_key == SECRETS["catalogTokenKey"]
    assert dict(ctx.credentials.catalog_secrets) == {
        "admin": SECRETS["catalogAdminSecret"],
        "ingest": SECRETS["catalogIngestSecret"],
        "maintain": SECRETS["catalogMaintainSecret"],
        "query": SECRETS["catalogQuerySecret"],
    }


def test_a_derived_kafka_cluster_id_never_reads_as_a_command_line_flag() -> None:
    # 1 in 64 name prefixes hashed to an id starting with '-' (a ci-<random> stack failed
    # `kafka-storage format --cluster-id -...`); the id stays a 16-byte UUID in base64.
    ids = {cluster(namePrefix=f"ci-{n:08x}").kafka_cluster_id for n in range(2_000)}
    assert len(ids) == 2_000
    for cluster_id in ids:
        assert not cluster_id.startswith("-") and len(cluster_id) == 22
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16
    assert cluster().kafka_cluster_id == cluster().kafka_cluster_id  # stable per stack
