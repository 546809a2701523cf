"""Versioned Avro schemas: `contracts/schemas/<name>.v<N>.avsc`, one record per file.

A `ContractSchema` carries the raw JSON (what the registry gets), the file it came from (what
error messages point at) and the fastavro-parsed form (what encoders use).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import SchemaParseException, UnknownType

from k2.contracts.paths import schemas_dir
from k2.errors import ContractError

_FILE_NAME = re.compile(r"^(?P<name>[a-z][a-z0-9_]*)\.v(?P<version>[1-9][0-9]*)\.avsc$")


@dataclass(frozen=True)
class ContractSchema:
    """One version of one contract schema."""

    name: str
    version: int
    path: Path
    raw: dict[str, Any] = field(compare=False, repr=False)

    @property
    def text(self) -> str:
        """Canonical JSON text of the schema (stable key order), as sent to the registry."""
        return json.dumps(self.raw, sort_keys=True, separators=(",", ":"))

    @property
    def full_name(self) -> str:
        """Fully qualified Avro record name, e.g. `dev.k2.marketdata.Trade`."""
        namespace = self.raw.get("namespace")
        return f"{namespace}.{self.raw['name']}" if namespace else str(self.raw["name"])

    @cached_property
    def parsed(self) -> Any:
        """The fastavro-parsed schema (used by schemaless readers and writers)."""
        try:
            return fastavro.parse_schema(self.raw)
        except (SchemaParseException, UnknownType, ValueError, TypeError, KeyError) as e:
            raise ContractError(f"{self.path}: invalid Avro schema: {e}") from e

    def field_names(self) -> list[str]:
        """Top-level field names, in order."""
        return [str(f["name"]) for f in self.raw.get("fields", [])]


def read_schema_file(path: Path) -> ContractSchema:
    """Read and parse one `<name>.v<N>.avsc` file; errors name the file."""
    match = _FILE_NAME.match(path.name)
    if match is None:
        raise ContractError(f"{path}: schema files must be named <name>.v<N>.avsc")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ContractError(f"{path}: cannot read schema JSON: {e}") from e
    if not isinstance(raw, dict) or raw.get("type") != "record":
        raise ContractError(f"{path}: a contract schema must be one Avro record")
    schema = ContractSchema(match["name"], int(match["version"]), path, raw)
    _ = schema.parsed  # fail now, naming the file, rather than at first use
    return schema


def all_schemas(root: Path | None = None) -> dict[str, list[ContractSchema]]:
    """Every schema, grouped by name, each list sorted by version (oldest first).

    Versions must be contiguous from 1: a gap means a file was lost or misnamed.
    """
    directory = schemas_dir(root)
    grouped: dict[str, list[ContractSchema]] = {}
    for path in sorted(directory.glob("*.avsc")):
        schema = read_schema_file(path)
        grouped.setdefault(schema.name, []).append(schema)
    for name, versions in grouped.items():
        versions.sort(key=lambda s: s.version)
        numbers = [s.version for s in versions]
        if numbers != list(range(1, len(numbers) + 1)):
            raise ContractError(f"{directory}: versions of {name!r} are not 1..N: {numbers}")
    return grouped


def schema_versions(name: str, root: Path | None = None) -> list[ContractSchema]:
    """All versions of schema `name`, oldest first."""
    grouped = all_schemas(root)
    if name not in grouped:
        known = ", ".join(sorted(grouped)) or "none"
        raise ContractError(f"unknown schema {name!r} in {schemas_dir(root)} (known: {known})")
    return grouped[name]


def load_schema(name: str, version: int | None = None, root: Path | None = None) -> ContractSchema:
    """Schema `name` at `version`, or its latest version when `version` is None."""
    versions = schema_versions(name, root)
    if version is None:
        return versions[-1]
    for schema in versions:
        if schema.version == version:
            return schema
    raise ContractError(f"schema {name!r} has no version {version} (has 1..{len(versions)})")


def latest_schema(name: str, root: Path | None = None) -> ContractSchema:
    """The newest version of schema `name`."""
    return load_schema(name, None, root)
