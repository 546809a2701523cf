"""The producer-side serializer: registry-backed, one schema id lookup per subject and version.

Producers do not register schemas (bootstrap does, after checking every version); they look
up the id of the schema they write with and cache it. Usage, as confluent-kafka's serde:

    serializer = RegistryAvroSerializer(client, dataset.subject, latest_schema("trade"))
    producer.produce(topic, key=..., value=serializer(record, ctx))
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import SerializationContext

from k2.contracts.schemas import ContractSchema
from k2.errors import ConfigError, K2Error
from k2.serde.avro import FramedAvroWriter
from k2.settings import registry_urls


class SchemaNotRegisteredError(K2Error):
    """The schema a producer writes with is not registered under its subject."""


# With several registry URLs, confluent-kafka's client tries each in order, every time, and
# retries each one `max.retries` times with jittered backoff before moving on. Its defaults
# (3 retries from 1 s, doubling) would hold every lookup for seconds on a dead first instance;
# one quick retry per instance keeps a transient hiccup from failing over, and a dead instance
# costs at most 0.2 s. One URL keeps the defaults: there, waiting is all a client can do.
FAILOVER_RETRIES: dict[str, int] = {
    "max.retries": 1,
    "retries.wait.ms": 200,
    "retries.max.wait.ms": 200,
}


def registry_client(url: str) -> SchemaRegistryClient:
    """A registry client for `url` (e.g. Apicurio's `.../apis/ccompat/v7`), or for several
    instances of one registry given as a comma-separated list (`K2_SCHEMA_REGISTRY_URL`,
    see `k2.settings.Endpoints`): it fails over between them.

    The caller owns it: use it as a context manager (or call `close()`), since it holds an
    HTTP connection pool whose sockets otherwise leak until garbage collection.
    """
    try:
        urls = registry_urls(url)
    except ValueError as e:
        raise ConfigError(str(e)) from e
    config: dict[str, str | int] = {"url": ",".join(urls)}
    if len(urls) > 1:
        config.update(FAILOVER_RETRIES)
    return SchemaRegistryClient(config)


def avro_schema(schema: ContractSchema) -> Schema:
    """The registry form of a contract schema."""
    return Schema(schema.text, schema_type="AVRO")


class RegistryAvroSerializer:
    """Serializes records of one schema version for one subject, framing them with its id."""

    def __init__(
        self,
        client: SchemaRegistryClient,
        subject: str,
        schema: ContractSchema,
        *,
        auto_register: bool = False,
    ) -> None:
        self._client = client
        self._subject = subject
        self._schema = schema
        self._auto_register = auto_register
        self._writer: FramedAvroWriter | None = None

    @property
    def schema_id(self) -> int:
        """The registry id of the schema (looked up once, then cached)."""
        return self._resolve().schema_id

    def __call__(self, record: Mapping[str, Any], ctx: SerializationContext | None = None) -> bytes:
        """The Confluent-framed Avro payload of `record`."""
        return self._resolve().encode(record)

    def _resolve(self) -> FramedAvroWriter:
        if self._writer is None:
            self._writer = FramedAvroWriter(self._schema, self._lookup_id())
        return self._writer

    def _lookup_id(self) -> int:
        registry_schema = avro_schema(self._schema)
        try:
            if self._auto_register:
                return int(self._client.register_schema(self._subject, registry_schema))
            found = self._client.lookup_schema(self._subject, registry_schema).schema_id
        except SchemaRegistryError as e:
            raise SchemaNotRegisteredError(
                f"{self._schema.path} is not registered under subject {self._subject!r}"
                f" (run `k2 bootstrap`): {e}"
            ) from e
        if found is None:
            raise SchemaNotRegisteredError(f"registry returned no id for {self._subject!r}")
        return int(found)
