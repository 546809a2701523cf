"""`k2 bootstrap` against the real stack: idempotent, tables equal the mapping, layout matches.

Also all-or-nothing: a broken schema history creates no topic, subject, namespace or table;
and an existing table with an older schema is evolved in place, its rows and history kept.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from confluent_kafka.admin import AdminClient, ConfigResource  # type: ignore[attr-defined]
from confluent_kafka.schema_registry import SchemaRegistryClient
from pyiceberg.catalog import Catalog

from k2 import kafka
from k2.bootstrap import BootstrapReport, Change, bootstrap_stack, expected_layout, layout_of
from k2.catalog import load_catalog
from k2.contracts.catalogue import Catalogue, load_catalogue
from k2.contracts.mapping import arrow_schema, iceberg_schema_for_versions, same_structure
from k2.contracts.schemas import schema_versions
from k2.errors import ContractError
from k2.settings import CatalogPrincipal, Endpoints
from tests.contract.vectors.cases import CASES

pytestmark = pytest.mark.integration

REPO_CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"
INCOMPATIBLE_SCHEMAS = Path(__file__).resolve().parents[1] / "contract" / "incompatible" / "schemas"


@pytest.fixture
def catalog(stack: Endpoints) -> Iterator[Catalog]:
    # Closed explicitly: the REST client's HTTP session would otherwise leak sockets.
    with load_catalog(stack, CatalogPrincipal.ADMIN) as opened:  # evolves, appends
        yield opened


@pytest.fixture
def admin(stack: Endpoints) -> AdminClient:
    return kafka.admin(stack.kafka_bootstrap_servers)


def _run(stack: Endpoints, catalogue: Catalogue) -> BootstrapReport:
    """One bootstrap with its own clients, as `k2 bootstrap` runs it."""
    return bootstrap_stack(catalogue, stack)


def test_bootstrap_creates_everything_then_changes_nothing(
    stack: Endpoints, unique: str, admin: AdminClient, catalog: Catalog
) -> None:
    catalogue = load_catalogue().with_prefix(unique)
    first = _run(stack, catalogue)
    kinds = {(a.kind, a.change) for a in first.actions}
    assert ("topic", Change.CREATED) in kinds and ("table", Change.CREATED) in kinds
    assert ("subject", Change.CREATED) in kinds and ("namespace", Change.CREATED) in kinds
    second = _run(stack, catalogue)
    assert second.changed == []
    assert [(a.kind, a.name) for a in second.actions] == [(a.kind, a.name) for a in first.actions]

    topics = admin.list_topics(timeout=30).topics
    for dataset in catalogue.datasets.values():
        assert len(topics[dataset.topic.name].partitions) == dataset.topic.partitions
        assert dataset.dlq_topic in topics
    ref = catalogue.dataset("reference_data").topic.name
    resource = ConfigResource(ConfigResource.Type.TOPIC, ref)
    configs = admin.describe_configs([resource])[resource].result()
    assert configs["cleanup.policy"].value == "compact"

    for dataset in catalogue.datasets.values():
        table = catalog.load_table(dataset.table_identifier)
        expected = iceberg_schema_for_versions(schema_versions(dataset.schema_name))
        assert same_structure(table.schema(), expected)
        assert [f.field_id for f in table.schema().fields] == [f.field_id for f in expected.fields]
        assert layout_of(table) == expected_layout(dataset)
        assert table.current_snapshot() is None  # bootstrap writes no data


def test_broken_history_creates_nothing(
    stack: Endpoints, unique: str, tmp_path: Path, admin: AdminClient, catalog: Catalog
) -> None:
    root = tmp_path / "contracts"
    shutil.copytree(REPO_CONTRACTS, root)
    shutil.copy(INCOMPATIBLE_SCHEMAS / "trade.v3.avsc", root / "schemas" / "trade.v3.avsc")
    catalogue = load_catalogue(root / "catalogue.yaml", check_schemas=False).with_prefix(unique)

    with pytest.raises(ContractError) as raised:
        _run(stack, catalogue)
    message = str(raised.value)
    assert message.startswith("bootstrap changed nothing")
    assert f"{root / 'schemas' / 'trade.v3.avsc'}: field venue_trade_type" in message

    assert [t for t in admin.list_topics(timeout=30).topics if t.startswith(unique)] == []
    assert not catalog.namespace_exists(catalogue.namespace)
    with SchemaRegistryClient({"url": stack.schema_registry_url}) as registry:
        assert [s for s in registry.get_subjects() if s.startswith(unique)] == []


def test_existing_older_table_is_evolved_not_dropped(
    stack: Endpoints, unique: str, tmp_path: Path, catalog: Catalog
) -> None:
    old = tmp_path / "contracts"
    shutil.copytree(REPO_CONTRACTS, old)
    for newer in (old / "schemas").glob("*.v2.avsc"):
        newer.unlink()
    old_catalogue = load_catalogue(old / "catalogue.yaml").with_prefix(unique)
    _run(stack, old_catalogue)
    identifier = old_catalogue.dataset("trades").table_identifier
    table = catalog.load_table(identifier)
    assert "settlement_date" not in table.schema().column_names
    v1_row = CASES[("trade", 1, "full")][1]
    table.append(pa.Table.from_pylist([v1_row], schema=arrow_schema(table.schema())))
    before = catalog.load_table(identifier)

    report = _run(stack, load_catalogue().with_prefix(unique))
    updated = {a.name for a in report.changed if a.kind == "table"}
    assert ".".join(identifier) in updated
    table = catalog.load_table(identifier)
    assert table.metadata.table_uuid == before.metadata.table_uuid  # evolved, not recreated
    assert table.history() == before.history()  # schema change only: no snapshot lost or added
    assert same_structure(table.schema(), iceberg_schema_for_versions(schema_versions("trade")))
    rows = table.scan().to_arrow().to_pylist()
    added = {"buyer_broker_id", "seller_broker_id", "settlement_date"}
    assert rows == [{**v1_row, **dict.fromkeys(added)}]  # the old row, new columns empty
