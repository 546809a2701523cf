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
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import docker
import httpx
import pytest

from k2.settings import CatalogPrincipal, Endpoints
from k2stack import kafka_security as sasl
from k2stack.catalog_auth import fetch_token
from k2stack.docker.spec import STACK_LABEL
from k2stack.pulumi import automation
from k2stack.pulumi.stacks import REPO_ROOT, free_port_offset, up_committed
from tests.reliability.kafka_principals import (
    TRADES,
    check_ingest_reads_sources_and_writes_only_dlqs,
    check_producer_writes_sources_and_reads_nothing,
    check_unauthenticated_and_wrong_clients_refused,
    check_workers_land_what_the_producer_wrote,
    client_settings,
)

# One worker owns the module (its module-scoped stack must not be brought up once per xdist
# worker) and runs it after or before the other modules that bring their own stack up.
pytestmark = [
    pytest.mark.docker,
    pytest.mark.timeout(900),
    pytest.mark.xdist_group("docker-own-stacks"),
]


@dataclass(frozen=True)
class Cluster:
    name: str
    endpoints: Endpoints
    bootstrap: str
    passwords: dict[str, str]  # SCRAM user -> password

    def client(self, user: str | None, password: str | None = None) -> dict[str, str]:
        """librdkafka settings for `user` (None: no authentication at all)."""
        return client_settings(self.bootstrap, self.passwords, user, password)


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


def test_an_unauthenticated_or_wrong_kafka_client_is_refused(cluster: Cluster) -> None:
    check_unauthenticated_and_wrong_clients_refused(cluster)


def test_the_producer_writes_source_topics_and_reads_nothing(cluster: Cluster) -> None:
    check_producer_writes_sources_and_reads_nothing(cluster)


def test_the_ingest_principal_reads_sources_and_writes_only_dlqs(cluster: Cluster) -> None:
    check_ingest_reads_sources_and_writes_only_dlqs(cluster)


def test_the_stacks_workers_land_what_the_producer_wrote(cluster: Cluster) -> None:
    check_workers_land_what_the_producer_wrote(cluster)  # the stack's own workers


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
