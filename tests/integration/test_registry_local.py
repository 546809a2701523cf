"""The stack's schema registry serves what K2 relies on, through confluent-kafka's client.

Apicurio Registry behind its Confluent-compatible API: register and fetch by id, the global
BACKWARD_TRANSITIVE level (Apicurio's own default is NONE), compatibility checks, rejection of
incompatible schemas, and storage in PostgreSQL rather than in memory.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from k2.settings import Endpoints
from k2stack.topology import REGISTRY_COMPATIBILITY, REGISTRY_DATABASE

pytestmark = pytest.mark.integration

# What Apicurio answers when a schema breaks the compatibility rule (same as Confluent).
INCOMPATIBLE = 409

TRADE_V1: dict[str, Any] = {
    "type": "record",
    "name": "Trade",
    "namespace": "k2.test",
    "fields": [
        {"name": "symbol", "type": "string"},
        {
            "name": "price",
            "type": {"type": "bytes", "logicalType": "decimal", "precision": 18, "scale": 6},
        },
        {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-micros"}},
    ],
}


def _with_fields(*fields: dict[str, Any], base: dict[str, Any] = TRADE_V1) -> Schema:
    return _avro({**base, "fields": [*base["fields"], *fields]})


def _avro(schema: dict[str, Any]) -> Schema:
    return Schema(json.dumps(schema), "AVRO")


ADDED_WITH_DEFAULT = _with_fields({"name": "venue", "type": "string", "default": "ASX"})
ADDED_WITHOUT_DEFAULT = _with_fields({"name": "venue", "type": "string"})
# A long cannot be read as a string. (Avro does promote bytes to string, so turning the
# decimal `price` into a string would pass the registry: that is for K2's contract lint.)
TS_AS_STRING = _avro(
    {
        **TRADE_V1,
        "fields": [*TRADE_V1["fields"][:2], {"name": "ts", "type": "string"}],
    }
)


@pytest.fixture
def client(stack: Endpoints) -> Iterator[SchemaRegistryClient]:
    # Closed explicitly: its HTTP session would otherwise leak a socket (a ResourceWarning).
    with SchemaRegistryClient({"url": stack.schema_registry_url}) as registry:
        yield registry


@pytest.fixture
def subject(client: SchemaRegistryClient, unique: str) -> Iterator[str]:
    name = f"{unique}trades-value"
    yield name
    try:
        client.delete_subject(name)
        client.delete_subject(name, permanent=True)
    except SchemaRegistryError as e:
        if e.http_status_code != 404:  # the test may have registered nothing
            raise


def test_global_compatibility_is_backward_transitive(stack: Endpoints) -> None:
    answer = httpx.get(f"{stack.schema_registry_url}/config", timeout=10)

    assert answer.status_code == 200
    assert answer.json()["compatibilityLevel"] == REGISTRY_COMPATIBILITY


def test_registered_schema_is_fetched_by_id(client: SchemaRegistryClient, subject: str) -> None:
    schema_id = client.register_schema(subject, _avro(TRADE_V1))

    fetched = client.get_schema(schema_id)

    assert fetched.schema_type == "AVRO"
    assert json.loads(fetched.schema_str) == TRADE_V1
    # Registering the same schema again is a no-op that answers the same id.
    assert client.register_schema(subject, _avro(TRADE_V1)) == schema_id
    assert client.get_latest_version(subject).schema_id == schema_id


def test_compatibility_check_tells_compatible_from_incompatible(
    client: SchemaRegistryClient, subject: str
) -> None:
    client.register_schema(subject, _avro(TRADE_V1))

    assert client.test_compatibility(subject, ADDED_WITH_DEFAULT) is True
    assert client.test_compatibility(subject, ADDED_WITHOUT_DEFAULT) is False
    assert client.test_compatibility(subject, TS_AS_STRING) is False


@pytest.mark.parametrize(
    "change",
    [ADDED_WITHOUT_DEFAULT, TS_AS_STRING],
    ids=["required-field-without-default", "field-type-change"],
)
def test_incompatible_schema_is_rejected(
    client: SchemaRegistryClient, subject: str, change: Schema
) -> None:
    client.register_schema(subject, _avro(TRADE_V1))

    with pytest.raises(SchemaRegistryError) as rejected:
        client.register_schema(subject, change)

    assert rejected.value.http_status_code == INCOMPATIBLE
    assert client.get_versions(subject) == [1]


def test_compatibility_is_checked_against_every_earlier_version(
    client: SchemaRegistryClient, subject: str
) -> None:
    # v3 can read v2's records (they carry `venue`) but not v1's: only a transitive level
    # refuses it.
    client.register_schema(subject, _avro(TRADE_V1))
    client.register_schema(subject, ADDED_WITH_DEFAULT)

    with pytest.raises(SchemaRegistryError) as rejected:
        client.register_schema(subject, ADDED_WITHOUT_DEFAULT)

    assert rejected.value.http_status_code == INCOMPATIBLE
    assert client.get_versions(subject) == [1, 2]


def test_schemas_are_stored_in_postgresql(
    stack: Endpoints, client: SchemaRegistryClient, subject: str
) -> None:
    schema_id = client.register_schema(subject, _avro(TRADE_V1))

    dsn = psycopg.conninfo.conninfo_to_dict(stack.postgres_dsn.get_secret_value())
    with psycopg.connect(**{**dsn, "dbname": REGISTRY_DATABASE}) as conn:
        # Apicurio's own tables: one row per subject version, keyed by the ccompat id.
        row = conn.execute(
            "SELECT contentid FROM versions WHERE artifactid = %s", (subject,)
        ).fetchone()

    assert row == (schema_id,)
