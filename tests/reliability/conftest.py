"""Fixtures of the reliability tests: a bootstrapped, prefixed catalogue on the local stack."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from pyiceberg.catalog import Catalog

from k2.bootstrap import bootstrap_stack
from k2.catalog import load_catalog
from k2.contracts.catalogue import Catalogue, load_catalogue
from k2.serde.serializer import registry_client
from k2.settings import CatalogPrincipal, Endpoints

from .cluster_support import Cluster, cluster_stack
from .faults_support import record_figures


@dataclass
class Lake:
    """A bootstrapped catalogue (topics, subjects, tables) under a unique prefix."""

    stack: Endpoints
    prefix: str
    catalogue: Catalogue
    catalog: Catalog
    registry: SchemaRegistryClient


@pytest.fixture
def lake(stack: Endpoints, unique: str) -> Iterator[Lake]:
    catalogue = load_catalogue().with_prefix(unique)
    catalog = load_catalog(stack, CatalogPrincipal.ADMIN)  # bootstraps the prefix
    bootstrap_stack(catalogue, stack, catalog=catalog)
    with registry_client(stack.schema_registry_url) as registry:
        yield Lake(stack, unique, catalogue, catalog, registry)
    catalog.close()  # pyiceberg's public lifecycle: closes the REST session


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """The session's one cluster-profile stack, for the modules of the `cluster-stack` xdist
    group (one worker owns it; its tests run one at a time)."""
    with cluster_stack() as running:
        record_figures("cluster_profile_up", up_s=round(running.up_s, 1))
        yield running
