"""Writer schemas by registry id: fetched once, parsed once, mapped to Arrow once.

Each record is decoded with its own writer schema (so no field is ever dropped) and the
resulting columns are resolved to the table by name: fields the writer lacks become nulls,
fields the table lacks evolve it first. That is Avro's writer→reader resolution, done on
whole columns instead of per record.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol
from urllib.parse import unquote, urlsplit, urlunsplit

import fastavro
import pyarrow as pa
import requests
from pyiceberg.schema import Schema as IcebergSchema

from k2.contracts.mapping import arrow_schema, iceberg_schema
from k2.errors import ConfigError, K2Error
from k2.ingest.errors import IngestError, RecordError
from k2.settings import registry_urls

HTTP_NOT_FOUND = 404
# What confluent-kafka's registry client asks for: the ccompat API answers in any of these.
REGISTRY_ACCEPT: Final = (
    "application/vnd.schemaregistry.v1+json, application/vnd.schemaregistry+json, application/json"
)
REGISTRY_TIMEOUT_S: Final = 30.0


class RegistryUnavailableError(IngestError):
    """The registry could not be reached; the caller retries with backoff."""


@dataclass(frozen=True)
class WriterSchema:
    """One registered writer schema, ready for decoding and Arrow building."""

    schema_id: int
    raw: dict[str, Any] = field(repr=False)
    parsed: Any = field(repr=False)
    iceberg: IcebergSchema = field(repr=False)
    arrow: pa.Schema = field(repr=False)

    @property
    def full_name(self) -> str:
        """Fully qualified record name, e.g. `dev.k2.marketdata.Trade`."""
        namespace = self.raw.get("namespace")
        return f"{namespace}.{self.raw['name']}" if namespace else str(self.raw["name"])

    @functools.cached_property
    def text(self) -> str:
        """The schema JSON (what an object-container-file header carries); once per schema."""
        return json.dumps(self.raw)


class SchemaSource(Protocol):
    """Where schema texts come from: the registry in production."""

    def schema_text(self, schema_id: int) -> str | None:
        """The schema JSON for `schema_id`, or None when the id is unknown."""

    def close(self) -> None:
        """Release connections."""


@dataclass(frozen=True)
class _Instance:
    """One registry instance: its base URL without userinfo, and its basic-auth credentials."""

    base: str
    auth: tuple[str, str] | None


def _instance(url: str) -> _Instance:
    parts = urlsplit(url)
    # Userinfo out of the URL (into the request's basic auth): errors quote the URL.
    host = parts.netloc.rpartition("@")[2]
    auth = None
    if parts.username or parts.password:
        auth = (unquote(parts.username or ""), unquote(parts.password or ""))
    return _Instance(urlunsplit(parts._replace(netloc=host)).rstrip("/"), auth)


class RegistrySchemaSource:
    """Schema texts from a Confluent-compatible registry: `GET <url>/schemas/ids/<id>`.

    That one lookup is all a worker asks of the registry, so it is made with `requests`
    (already loaded for the Iceberg REST catalog) instead of confluent-kafka's
    SchemaRegistryClient, whose import (httpx, authlib, joserfc) and TLS context cost ~0.4 s
    of every worker's start. Credentials travel as the URL's userinfo, as for that client.

    `url` may name several instances of one registry, comma-separated (`K2_SCHEMA_REGISTRY_URL`,
    see `k2.settings.Endpoints`). A lookup starts at the instance that answered last and moves
    on to the next when one is unreachable or fails; a 404 is the answer (the instances share
    one store), not a failure. Only when every instance failed is RegistryUnavailableError
    raised: the worker backs off on it, its partitions paused, so nothing is retried here.
    """

    def __init__(self, url: str, timeout_s: float = REGISTRY_TIMEOUT_S) -> None:
        try:
            self._instances = tuple(_instance(one) for one in registry_urls(url))
        except ValueError as e:
            raise ConfigError(str(e)) from e
        self._preferred = 0
        self._timeout_s = timeout_s
        self._session = requests.Session()
        self._session.headers["Accept"] = REGISTRY_ACCEPT

    def schema_text(self, schema_id: int) -> str | None:
        """Look up `schema_id`; 404 means unknown, failures of every instance mean "retry"."""
        failures: list[str] = []
        cause: Exception | None = None
        count = len(self._instances)
        for step in range(count):
            index = (self._preferred + step) % count
            try:
                text = self._lookup(self._instances[index], schema_id)
            except RegistryUnavailableError as e:
                failures.append(str(e))
                cause = e.__cause__ if isinstance(e.__cause__, Exception) else e
                continue
            self._preferred = index
            return text
        raise RegistryUnavailableError("; ".join(failures)) from cause

    def _lookup(self, instance: _Instance, schema_id: int) -> str | None:
        try:
            response = self._session.get(
                f"{instance.base}/schemas/ids/{schema_id}",
                auth=instance.auth,
                timeout=self._timeout_s,
            )
        except requests.RequestException as e:  # transport errors: the instance is down
            raise RegistryUnavailableError(
                f"registry {instance.base} unreachable for id {schema_id}: {e}"
            ) from e
        if response.status_code == HTTP_NOT_FOUND:
            return None
        try:
            response.raise_for_status()
            return str(response.json()["schema"])
        except (requests.RequestException, ValueError, KeyError, TypeError) as e:
            raise RegistryUnavailableError(
                f"registry error for schema id {schema_id}: {e}: {response.text[:200]}"
            ) from e

    def close(self) -> None:
        """Close the HTTP session's connections."""
        self._session.close()


class StaticSchemaSource:
    """Schema texts from a fixed mapping (offline replays, benchmarks)."""

    def __init__(self, texts: Mapping[int, str]) -> None:
        self._texts = dict(texts)

    def schema_text(self, schema_id: int) -> str | None:
        """The text registered under `schema_id` here, if any."""
        return self._texts.get(schema_id)

    def close(self) -> None:
        """Nothing to release."""


class WriterSchemas:
    """Writer schemas by id, cached forever (registry ids are immutable).

    Only schemas of the dataset's record (`expected_name`) are accepted: a schema registered
    for another topic would decode garbage into this table.
    """

    def __init__(self, source: SchemaSource, expected_name: str) -> None:
        self._source = source
        self._expected_name = expected_name
        self._cache: dict[int, WriterSchema] = {}
        self._rejected: dict[int, RecordError] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        """Release the schema source's connections."""
        self._source.close()

    def get(self, schema_id: int) -> WriterSchema:
        """The writer schema for `schema_id`; RecordError when it cannot be used."""
        cached = self._cache.get(schema_id)
        if cached is not None:
            return cached
        rejected = self._rejected.get(schema_id)
        if rejected is not None:
            raise rejected
        with self._lock:
            return self._load(schema_id)

    def _load(self, schema_id: int) -> WriterSchema:
        text = self._source.schema_text(schema_id)
        if text is None:
            # Not cached as rejected: it may be registered a moment later.
            raise RecordError("unknown_schema_id", f"schema id {schema_id} is not registered")
        try:
            raw = json.loads(text)
            writer = _build(schema_id, raw)
        except (ValueError, TypeError, KeyError, K2Error) as e:
            error = RecordError("unsupported_schema", f"schema id {schema_id}: {e}")
            self._rejected[schema_id] = error
            raise error from e
        if writer.full_name != self._expected_name:
            error = RecordError(
                "wrong_schema",
                f"schema id {schema_id} is {writer.full_name}, expected {self._expected_name}",
            )
            self._rejected[schema_id] = error
            raise error
        self._cache[schema_id] = writer
        return writer


def _build(schema_id: int, raw: Any) -> WriterSchema:
    if not isinstance(raw, dict) or raw.get("type") != "record":
        raise ValueError("not an Avro record schema")
    parsed = fastavro.parse_schema(raw)
    ice = iceberg_schema(raw)
    return WriterSchema(schema_id, raw, parsed, ice, arrow_schema(ice, include_field_ids=False))
