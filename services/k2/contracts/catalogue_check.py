"""Checks of the catalogue against the schemas it names: every problem, named by file and key."""

from __future__ import annotations

from pathlib import Path

from pyiceberg.schema import Schema
from pyiceberg.transforms import parse_transform

from k2.contracts.catalogue import Catalogue, Dataset
from k2.contracts.mapping import iceberg_schema_for_versions
from k2.contracts.schemas import schema_versions
from k2.errors import ContractError


def check_catalogue(catalogue: Catalogue, schemas_root: Path | None = None) -> list[str]:
    """Every problem of `catalogue`, as `<file>: datasets.<name>.<key>: <message>` lines."""
    where = str(catalogue.source or "catalogue")
    problems: list[str] = []
    topics: dict[str, str] = {}
    for name, dataset in catalogue.datasets.items():
        prefix = f"{where}: datasets.{name}"
        for topic in (dataset.topic.name, dataset.dlq_topic):
            if topic in topics:
                problems.append(f"{prefix}: topic {topic} already used by {topics[topic]}")
            topics[topic] = name
        try:
            schema = iceberg_schema_for_versions(schema_versions(dataset.schema_name, schemas_root))
        except ContractError as e:
            problems.append(f"{prefix}.schema: {e}")
            continue
        problems += [f"{prefix}.{p}" for p in _check_dataset(dataset, schema)]
    return problems


def _check_dataset(dataset: Dataset, schema: Schema) -> list[str]:
    problems: list[str] = []
    columns = {f.name: f for f in schema.fields}
    if dataset.ingest is not None:
        problems += _check_ingest(dataset, set(columns))
    for key in dataset.topic.key:
        column = columns.get(key)
        if column is None:
            problems.append(f"topic.key: unknown field {key!r} in schema {dataset.schema_name}")
        elif not column.required:
            problems.append(f"topic.key: field {key!r} is optional; key fields must be required")
    for index, part in enumerate(dataset.table.partition_spec):
        column = columns.get(part.source)
        label = f"table.partition_spec[{index}]"
        if column is None:
            problems.append(f"{label}: unknown source field {part.source!r}")
            continue
        if not parse_transform(part.transform).can_transform(column.field_type):
            problems.append(
                f"{label}: transform {part.transform} cannot apply to"
                f" {part.source} ({column.field_type})"
            )
    names = [p.name for p in dataset.table.partition_spec]
    if len(set(names)) != len(names):
        problems.append(f"table.partition_spec: duplicate partition fields {names}")
    for column_name in dataset.table.sort_order:
        if column_name not in columns:
            problems.append(f"table.sort_order: unknown field {column_name!r}")
    return problems


def _check_ingest(dataset: Dataset, columns: set[str]) -> list[str]:
    """The identity and every validation rule name fields of the dataset's schema."""
    spec = dataset.ingest_spec()
    problems = [
        f"ingest.identity: unknown field {name!r} in schema {dataset.schema_name}"
        for name in (spec.identity, "exchange", "symbol")
        if name not in columns
    ]
    for rule in spec.validation:
        problems += [
            f"ingest.validation: {rule.reason}: unknown field {name!r} in schema "
            f"{dataset.schema_name}"
            for name in rule.columns
            if name not in columns
        ]
    return problems
