"""Kafka SASL/SCRAM + ACLs on the local cluster profile, as the Pulumi `cluster` stack promises.

The profile formats its three nodes with SCRAM credentials for K2's principals and grants the
catalogue's ACLs once the cluster forms (`k2stack.local.stack`), exactly as the Docker stack
does; the same checks as on the Docker cluster (tests/reliability/kafka_principals.py) run
here, against the session's one cluster stack (shared with the failover tests), with the
catalogue's own unprefixed topics and tables and a real `k2 ingest run` worker that holds only
the ingest principal's Kafka and catalog credentials.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from k2.bootstrap import bootstrap_stack
from k2.catalog import load_catalog
from k2.children import k2_command, stop
from k2.contracts.catalogue import load_catalogue
from k2.settings import CatalogPrincipal
from k2stack import kafka_security as sasl
from k2stack.docker.stack_spec import only_catalog_credential

from .cluster_support import Cluster
from .kafka_principals import (
    check_ingest_reads_sources_and_writes_only_dlqs,
    check_producer_writes_sources_and_reads_nothing,
    check_unauthenticated_and_wrong_clients_refused,
    check_workers_land_what_the_producer_wrote,
)

pytestmark = [
    pytest.mark.reliability,
    pytest.mark.integration,
    pytest.mark.local_stack,
    pytest.mark.xdist_group("cluster-stack"),
]


@pytest.fixture(scope="module")
def secured(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """The cluster with the unprefixed catalogue bootstrapped (as the admin principal) and a
    trades worker running as the ingest principal."""
    cluster.make_whole()
    with pytest.MonkeyPatch.context() as patch:
        for name, value in cluster.kafka_env(sasl.ADMIN).items():
            patch.setenv(name, value)
        with load_catalog(cluster.endpoints, CatalogPrincipal.ADMIN) as admin:
            bootstrap_stack(load_catalogue(), cluster.endpoints, catalog=admin)
    env = {k: v for k, v in os.environ.items() if not k.startswith("K2_")}
    env |= only_catalog_credential(cluster.endpoints.as_env(), CatalogPrincipal.INGEST)
    env |= cluster.kafka_env(sasl.INGEST)
    log: Path = tmp_path_factory.mktemp("principals") / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [*k2_command(), "ingest", "run", "--table", "trades"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield cluster
    finally:
        code = stop(worker)
    # Stopped with SIGTERM, the worker leaves its group as the ingest principal (kafka-python's
    # admin LeaveGroup over SASL/SCRAM, allowed by the principal's group ACL: k2.ingest.leave).
    departures = [
        json.loads(line)["departure"]
        for line in log.read_text(errors="replace").splitlines()
        if line.startswith("{") and '"group departure"' in line
    ]
    assert code == 0 and departures and departures[-1]["left"], (code, departures, str(log))


def test_an_unauthenticated_or_wrong_kafka_client_is_refused(secured: Cluster) -> None:
    check_unauthenticated_and_wrong_clients_refused(secured)


def test_the_producer_writes_source_topics_and_reads_nothing(secured: Cluster) -> None:
    check_producer_writes_sources_and_reads_nothing(secured)


def test_the_ingest_principal_reads_sources_and_writes_only_dlqs(secured: Cluster) -> None:
    check_ingest_reads_sources_and_writes_only_dlqs(secured)


def test_a_worker_with_only_ingest_credentials_lands_what_the_producer_wrote(
    secured: Cluster,
) -> None:
    check_workers_land_what_the_producer_wrote(secured)
