"""Contracts against the stack's real registry: register all versions, refuse a broken history.

Also producer→consumer: what K2's registry-backed serializer emits decodes to exactly the
Iceberg-typed row expected (decimals and timestamps compared exactly).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from k2.contracts.catalogue import load_catalogue
from k2.contracts.mapping import arrow_schema, iceberg_schema_for_versions
from k2.contracts.registry import register
from k2.contracts.schemas import latest_schema, load_schema, read_schema_file, schema_versions
from k2.errors import ContractError
from k2.serde.avro import decode_body
from k2.serde.serializer import RegistryAvroSerializer, SchemaNotRegisteredError, avro_schema
from k2.serde.wire import Framed
from k2.settings import Endpoints
from tests.contract.vectors.cases import CASES

pytestmark = pytest.mark.integration


REPO_CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"
INCOMPATIBLE_SCHEMAS = Path(__file__).resolve().parents[1] / "contract" / "incompatible" / "schemas"


@pytest.fixture
def client(stack: Endpoints) -> Iterator[SchemaRegistryClient]:
    # Closed explicitly: its HTTP session would otherwise leak a socket (a ResourceWarning).
    with SchemaRegistryClient({"url": stack.schema_registry_url}) as registry:
        yield registry


def _subjects(client: SchemaRegistryClient, prefix: str) -> list[str]:
    # Filtered here: Apicurio ignores the `subjectPrefix` parameter and lists every subject.
    return [s for s in client.get_subjects() if s.startswith(prefix)]


def _broken_contracts(tmp_path: Path) -> Path:
    """A copy of contracts/ whose trade history ends with the deliberately broken v3."""
    root = tmp_path / "contracts"
    shutil.copytree(REPO_CONTRACTS, root)
    shutil.copy(INCOMPATIBLE_SCHEMAS / "trade.v3.avsc", root / "schemas" / "trade.v3.avsc")
    return root / "catalogue.yaml"


def test_register_all_versions_then_again_changes_nothing(
    client: SchemaRegistryClient, unique: str
) -> None:
    catalogue = load_catalogue().with_prefix(unique)
    first = register(catalogue, client)
    assert all(r.created for r in first) and len(first) == 5
    second = register(catalogue, client)
    assert not any(r.created for r in second)
    assert [r.schema_id for r in second] == [r.schema_id for r in first]
    subject = catalogue.dataset("trades").subject
    assert client.get_compatibility(subject) == "BACKWARD_TRANSITIVE"
    assert client.get_versions(subject) == [1, 2]


def test_registry_rejects_the_incompatible_variant(
    client: SchemaRegistryClient, unique: str
) -> None:
    catalogue = load_catalogue().with_prefix(unique)
    register(catalogue, client)
    subject = catalogue.dataset("trades").subject
    broken = avro_schema_from(INCOMPATIBLE_SCHEMAS / "trade.v3.avsc")
    assert client.test_compatibility(subject, broken) is False
    with pytest.raises(SchemaRegistryError):
        client.register_schema(subject, broken)
    assert client.get_versions(subject) == [1, 2]


def test_nothing_registered_when_one_history_is_broken(
    client: SchemaRegistryClient, unique: str, tmp_path: Path
) -> None:
    path = _broken_contracts(tmp_path)
    # Loading the catalogue already refuses the history, naming the file and the field.
    with pytest.raises(ContractError, match=r"trade\.v3\.avsc: field venue_trade_type"):
        load_catalogue(path)
    # Registering (the catalogue loaded without its schema checks) refuses it too, before
    # writing anything: no subject of any dataset, not even a compatibility level.
    catalogue = load_catalogue(path, check_schemas=False).with_prefix(unique)
    with pytest.raises(ContractError, match=r"trade\.v3\.avsc.*price") as raised:
        register(catalogue, client)
    assert str(raised.value).startswith("nothing registered")
    assert _subjects(client, unique) == []
    for dataset in catalogue.datasets.values():
        with pytest.raises(SchemaRegistryError) as missing:
            client.get_compatibility(dataset.subject)
        assert missing.value.http_status_code == 404


def test_registry_verdict_covers_every_registered_version(
    client: SchemaRegistryClient, unique: str
) -> None:
    """A subject holding a version K2 never wrote: K2's v2 is refused before anything is written.

    v2 is compatible with the latest version (K2's v1) but not with the older foreign one, so
    only a check against all versions catches it; Apicurio's `versions/latest` check does not.
    """
    catalogue = load_catalogue().with_prefix(unique)
    subject = catalogue.dataset("trades").subject
    foreign = Schema(
        '{"type": "record", "name": "Trade", "namespace": "dev.k2.marketdata",'
        ' "fields": [{"name": "legacy_id", "type": "long"}]}',
        schema_type="AVRO",
    )
    client.set_compatibility(subject, "NONE")
    client.register_schema(subject, foreign)
    client.register_schema(subject, avro_schema(load_schema("trade", 1)))
    client.set_compatibility(subject, "BACKWARD_TRANSITIVE")

    with pytest.raises(ContractError, match=r"trade\.v2\.avsc: registry says incompatible"):
        register(catalogue, client)
    assert _subjects(client, unique) == [subject]  # the other datasets: nothing registered
    assert client.get_versions(subject) == [1, 2]


def test_serializer_output_decodes_to_exact_iceberg_rows(
    client: SchemaRegistryClient, unique: str
) -> None:
    catalogue = load_catalogue().with_prefix(unique)
    dataset = catalogue.dataset("trades")
    schema = latest_schema("trade")
    with pytest.raises(SchemaNotRegisteredError):
        RegistryAvroSerializer(client, dataset.subject, schema)(CASES[("trade", 2, "full")][1])
    register(catalogue, client)
    serializer = RegistryAvroSerializer(client, dataset.subject, schema)
    record = CASES[("trade", 2, "full")][1]
    framed = Framed.parse(serializer(record))
    assert framed.schema_id == serializer.schema_id
    assert client.get_schema(framed.schema_id).schema_str is not None
    decoded = decode_body(schema, framed.body)
    table_schema = arrow_schema(
        iceberg_schema_for_versions(schema_versions("trade")), include_field_ids=False
    )
    row = pa.Table.from_pylist([decoded], schema=table_schema).to_pylist()[0]
    assert row == record  # Decimal and tz-aware datetime equality: exact, no float anywhere


def avro_schema_from(path: Path) -> Schema:
    return avro_schema(read_schema_file(path))
