"""Fixtures for replay/query/maintenance integration tests: a bootstrapped, prefixed catalogue."""

from __future__ import annotations

import pytest
from confluent_kafka.admin import AdminClient
from pyiceberg.catalog import Catalog

from k2.bootstrap import bootstrap
from k2.catalog import load_catalog
from k2.contracts.catalogue import Catalogue, load_catalogue
from k2.serde.serializer import registry_client
from k2.settings import Endpoints


@pytest.fixture
def iceberg(stack: Endpoints) -> Catalog:
    return load_catalog(stack)


@pytest.fixture
def prefixed(stack: Endpoints, unique: str, iceberg: Catalog) -> Catalogue:
    """Topics, subjects, namespace and tables of a unique prefix, created by `k2 bootstrap`."""
    catalogue = load_catalogue().with_prefix(unique)
    with registry_client(stack.schema_registry_url) as registry:
        bootstrap(
            catalogue,
            admin=AdminClient({"bootstrap.servers": stack.kafka_bootstrap_servers}),
            registry=registry,
            catalog=iceberg,
        )
    return catalogue
