"""The stack's Iceberg REST catalog serves what K2 relies on, through pyiceberg's REST client.

Tables are created, appended to and scanned through `k2.catalog.load_catalog`, the one place K2
builds its catalog client: exact decimals and UTC microsecond timestamps survive the round trip,
snapshot summary properties (where K2 records its commit metadata) are stored, and the catalog's
state lives in PostgreSQL, not in the server's memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import psycopg
import pyarrow as pa
import pytest
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.types import DecimalType, LongType, NestedField, StringType, TimestamptzType

from k2.catalog import load_catalog
from k2.settings import CatalogPrincipal, Endpoints

pytestmark = pytest.mark.integration

SCHEMA = Schema(
    NestedField(1, "symbol", StringType(), required=True),
    NestedField(2, "price", DecimalType(18, 8), required=True),
    NestedField(3, "exchange_ts", TimestamptzType(), required=True),
    NestedField(4, "sequence", LongType(), required=True),
)


@pytest.fixture
def catalog(stack: Endpoints) -> Iterator[Catalog]:
    # Closed explicitly: the REST client's HTTP session would otherwise leak sockets.
    with load_catalog(stack, CatalogPrincipal.ADMIN) as opened:  # creates and drops tables
        yield opened


@pytest.fixture
def namespace(catalog: Catalog, unique: str) -> Iterator[str]:
    name = f"{unique}iceberg"
    catalog.create_namespace(name)
    yield name
    for identifier in catalog.list_tables(name):
        catalog.purge_table(identifier)
    catalog.drop_namespace(name)


@pytest.fixture
def table(catalog: Catalog, namespace: str) -> Table:
    return catalog.create_table((namespace, "trades"), schema=SCHEMA)


def _trades(table: Table) -> pa.Table:
    return pa.Table.from_pylist(
        [
            {
                "symbol": "BHP",
                "price": Decimal("45.12345678"),
                "exchange_ts": datetime(2026, 1, 2, 23, 59, 59, 999999, tzinfo=UTC),
                "sequence": 1,
            },
            {
                # The extremes of decimal(18,8): the smallest step and the largest value.
                "symbol": "CBA",
                "price": Decimal("0.00000001"),
                "exchange_ts": datetime(2026, 1, 3, 0, 0, 0, 1, tzinfo=UTC),
                "sequence": 2,
            },
            {
                "symbol": "CBA",
                "price": Decimal("9999999999.99999999"),
                "exchange_ts": datetime(1970, 1, 1, tzinfo=UTC),
                "sequence": 3,
            },
        ],
        schema=table.schema().as_arrow(),
    )


def test_namespace_is_listed(catalog: Catalog, namespace: str) -> None:
    assert (namespace,) in catalog.list_namespaces()


def test_append_then_scan_returns_exact_values(catalog: Catalog, table: Table) -> None:
    rows = _trades(table)
    table.append(rows)

    scanned = catalog.load_table(table.name()).scan().to_arrow().sort_by("sequence")

    assert scanned.schema.field("price").type == pa.decimal128(18, 8)
    assert scanned.schema.field("exchange_ts").type == pa.timestamp("us", tz="UTC")
    assert scanned.to_pylist() == rows.to_pylist()


def test_snapshot_properties_are_stored(catalog: Catalog, table: Table) -> None:
    table.append(_trades(table), snapshot_properties={"k2.offsets": "0:41,1:7", "k2.run": "r1"})

    snapshot = catalog.load_table(table.name()).current_snapshot()

    assert snapshot is not None
    assert snapshot.summary is not None
    assert snapshot.summary["k2.offsets"] == "0:41,1:7"
    assert snapshot.summary["k2.run"] == "r1"


def test_every_append_is_a_snapshot(catalog: Catalog, table: Table) -> None:
    rows = _trades(table)
    table.append(rows)
    table.append(rows)

    loaded = catalog.load_table(table.name())

    assert len(loaded.history()) == 2
    assert loaded.scan().to_arrow().num_rows == 2 * rows.num_rows


def test_catalog_state_lives_in_postgres(stack: Endpoints, table: Table) -> None:
    """A fresh client sees the table, and PostgreSQL holds its current metadata pointer."""
    table.append(_trades(table))
    namespace, name = table.name()

    with load_catalog(stack) as fresh:
        reloaded = fresh.load_table((namespace, name))
    with psycopg.connect(stack.postgres_dsn.get_secret_value()) as conn:
        row = conn.execute(
            "SELECT metadata_location FROM iceberg_tables"
            " WHERE table_namespace = %s AND table_name = %s",
            (namespace, name),
        ).fetchone()

    assert row is not None
    assert row[0] == reloaded.metadata_location
    assert row[0].startswith("s3://warehouse/")


def test_dropped_table_is_gone(catalog: Catalog, namespace: str) -> None:
    identifier = (namespace, "dropped")
    catalog.create_table(identifier, schema=SCHEMA)

    catalog.purge_table(identifier)

    with pytest.raises(NoSuchTableError):
        catalog.load_table(identifier)
