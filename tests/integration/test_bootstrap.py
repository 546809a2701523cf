"""`k2 bootstrap` against the real stack: idempotent, tables equal the mapping, layout matches."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource
from confluent_kafka.schema_registry import SchemaRegistryClient

from k2.bootstrap import Change, bootstrap, expected_layout, layout_of
from k2.catalog import load_catalog
from k2.contracts.catalogue import Catalogue, load_catalogue
from k2.contracts.mapping import iceberg_schema_for_versions, same_structure
from k2.contracts.schemas import schema_versions
from k2.settings import Endpoints

pytestmark = pytest.mark.integration

REPO_CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"


def _run(stack: Endpoints, catalogue: Catalogue):  # type: ignore[no-untyped-def]
    return bootstrap(
        catalogue,
        admin=AdminClient({"bootstrap.servers": stack.kafka_bootstrap_servers}),
        registry=SchemaRegistryClient({"url": stack.schema_registry_url}),
        catalog=load_catalog(stack),
    )


def test_bootstrap_creates_everything_then_changes_nothing(stack: Endpoints, unique: str) -> None:
    catalogue = load_catalogue().with_prefix(unique)
    first = _run(stack, catalogue)
    kinds = {(a.kind, a.change) for a in first.actions}
    assert ("topic", Change.CREATED) in kinds and ("table", Change.CREATED) in kinds
    assert _run(stack, catalogue).changed == []

    admin = AdminClient({"bootstrap.servers": stack.kafka_bootstrap_servers})
    topics = admin.list_topics(timeout=30).topics
    for dataset in catalogue.datasets.values():
        assert len(topics[dataset.topic.name].partitions) == dataset.topic.partitions
        assert dataset.dlq_topic in topics
    ref = catalogue.dataset("reference_data").topic.name
    resource = ConfigResource(ConfigResource.Type.TOPIC, ref)
    configs = admin.describe_configs([resource])[resource].result()
    assert configs["cleanup.policy"].value == "compact"

    catalog = load_catalog(stack)
    for dataset in catalogue.datasets.values():
        table = catalog.load_table(dataset.table_identifier)
        expected = iceberg_schema_for_versions(schema_versions(dataset.schema_name))
        assert same_structure(table.schema(), expected)
        assert [f.field_id for f in table.schema().fields] == [f.field_id for f in expected.fields]
        assert layout_of(table) == expected_layout(dataset)


def test_existing_older_table_is_evolved_not_dropped(
    stack: Endpoints, unique: str, tmp_path: Path
) -> None:
    old = tmp_path / "contracts"
    shutil.copytree(REPO_CONTRACTS, old)
    for newer in (old / "schemas").glob("*.v2.avsc"):
        newer.unlink()
    old_catalogue = load_catalogue(old / "catalogue.yaml").with_prefix(unique)
    _run(stack, old_catalogue)
    catalog = load_catalog(stack)
    identifier = old_catalogue.dataset("trades").table_identifier
    table_uuid = catalog.load_table(identifier).metadata.table_uuid
    assert "settlement_date" not in catalog.load_table(identifier).schema().column_names

    report = _run(stack, load_catalogue().with_prefix(unique))
    updated = {a.name for a in report.changed if a.kind == "table"}
    assert ".".join(identifier) in updated
    table = catalog.load_table(identifier)
    assert table.metadata.table_uuid == table_uuid  # same table: evolved, not recreated
    assert same_structure(table.schema(), iceberg_schema_for_versions(schema_versions("trade")))
