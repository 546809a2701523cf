"""Fixtures for replay/query/maintenance integration tests: a bootstrapped, prefixed catalogue."""

from __future__ import annotations

import pytest
from pyiceberg.catalog import Catalog

from k2.bootstrap import bootstrap_stack
from k2.catalog import load_catalog
from k2.contracts.catalogue import Catalogue, load_catalogue
from k2.settings import Endpoints


@pytest.fixture
def iceberg(stack: Endpoints) -> Catalog:
    return load_catalog(stack)


@pytest.fixture
def prefixed(stack: Endpoints, unique: str, iceberg: Catalog) -> Catalogue:
    """Topics, subjects, namespace and tables of a unique prefix, created by `k2 bootstrap`."""
    catalogue = load_catalogue().with_prefix(unique)
    bootstrap_stack(catalogue, stack, catalog=iceberg)
    return catalogue
