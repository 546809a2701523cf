"""Fixtures for replay/query/maintenance integration tests: a bootstrapped, prefixed catalogue."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from pyiceberg.catalog import Catalog

from k2.bootstrap import bootstrap_stack
from k2.catalog import load_catalog
from k2.contracts.catalogue import Catalogue, load_catalogue
from k2.settings import CatalogPrincipal, Endpoints


@pytest.fixture
def iceberg(stack: Endpoints) -> Catalog:
    return load_catalog(stack, CatalogPrincipal.ADMIN)  # bootstraps, appends, drops


@pytest.fixture
def prefixed(stack: Endpoints, unique: str, iceberg: Catalog) -> Catalogue:
    """Topics, subjects, namespace and tables of a unique prefix, created by `k2 bootstrap`."""
    catalogue = load_catalogue().with_prefix(unique)
    bootstrap_stack(catalogue, stack, catalog=iceberg)
    return catalogue


# The two small companies keep the test quick; parsing of the big files is unit-tested.
SMALL = {"3153": ("MWR", 11, 60), "7181": ("DVN", 232, 549)}


@pytest.fixture
def small_data_dir(asx_data_dir: Path, tmp_path: Path) -> Path:
    root = tmp_path / "asx"
    (root / "reference-data").mkdir(parents=True)
    header, *rows = (
        (asx_data_dir / "reference-data" / "company_info.csv").read_bytes().split(b"\r\n")
    )
    kept = [r for r in rows if r.split(b",")[0].decode() in SMALL]
    (root / "reference-data" / "company_info.csv").write_bytes(b"\r\n".join([header, *kept, b""]))
    shutil.copy(asx_data_dir / "reference-data" / "dividends.csv", root / "reference-data")
    # dividends name BHP and RIO, which this subset leaves out: keep only the header.
    (root / "reference-data" / "dividends.csv").write_bytes(
        (asx_data_dir / "reference-data" / "dividends.csv").read_bytes().split(b"\r\n")[0] + b"\r\n"
    )
    for folder in ("trades", "quotes"):
        (root / folder).mkdir()
        for company_id in SMALL:
            shutil.copy(asx_data_dir / folder / f"{company_id}.csv", root / folder)
    return root
