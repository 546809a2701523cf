"""THE Avro→Iceberg (and Avro→Arrow) type mapping, used by bootstrap and the ingest workers.

Rules: decimal(p,s)→decimal(p,s); timestamp-micros→timestamptz; date→date; time-micros→time;
int→int; long→long; boolean→boolean; string/enum→string; bytes→binary; fixed→fixed(n);
array→list; map→map; record→struct; a two-branch union with null→optional, everything else
required. Millisecond logical types and general unions are refused: they are exactly the
mistakes K2 exists to prevent.

Field ids: `iceberg_schema` assigns them as Iceberg does for a new table (each struct's fields
first, then their children). `iceberg_schema_for_versions` replays the evolution v1→vN with
pyiceberg's own `union_by_name`, so ids equal those of a table created at v1 and evolved since:
the ids of a field never depend on when a table was created. Bootstrap creates tables that way.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any

import pyarrow as pa
from pyiceberg.exceptions import ValidationError
from pyiceberg.io.pyarrow import schema_to_pyarrow
from pyiceberg.schema import Schema, assign_fresh_schema_ids
from pyiceberg.table.update.schema import UpdateSchema
from pyiceberg.types import (
    BinaryType,
    BooleanType,
    DateType,
    DecimalType,
    DoubleType,
    FixedType,
    FloatType,
    IcebergType,
    IntegerType,
    ListType,
    LongType,
    MapType,
    NestedField,
    StringType,
    StructType,
    TimestamptzType,
    TimeType,
)

from k2.contracts.schemas import ContractSchema
from k2.errors import ContractError

_PRIMITIVES: dict[str, IcebergType] = {
    "boolean": BooleanType(),
    "int": IntegerType(),
    "long": LongType(),
    "float": FloatType(),
    "double": DoubleType(),
    "bytes": BinaryType(),
    "string": StringType(),
}
_REFUSED_LOGICAL = {"timestamp-millis", "time-millis", "local-timestamp-millis"}


class _Converter:
    """Walks one Avro schema (raw JSON), resolving named types as Avro does."""

    def __init__(self, where: str) -> None:
        self._where = where
        self._named: dict[str, Any] = {}
        self._ids = itertools.count(1)  # temporary ids; fresh ones are assigned afterwards

    def record(self, avro: dict[str, Any], path: str) -> StructType:
        self._remember(avro)
        fields = []
        for avro_field in avro.get("fields", []):
            name = str(avro_field["name"])
            field_type, optional = self._unwrap_nullable(avro_field["type"], f"{path}{name}")
            fields.append(
                NestedField(
                    field_id=next(self._ids),
                    name=name,
                    field_type=self.convert(field_type, f"{path}{name}"),
                    required=not optional,
                    doc=avro_field.get("doc"),
                )
            )
        return StructType(*fields)

    def convert(self, avro: Any, path: str) -> IcebergType:
        if isinstance(avro, str):
            if avro in _PRIMITIVES:
                return _PRIMITIVES[avro]
            if avro in self._named:
                return self.convert(self._named[avro], path)
            raise self._error(path, f"unknown Avro type {avro!r}")
        if isinstance(avro, list):
            raise self._error(path, "only a two-branch union with null is supported")
        logical = avro.get("logicalType")
        kind = avro.get("type")
        if logical is not None:
            return self._logical(avro, str(logical), path)
        if kind == "record":
            return self.record(avro, f"{path}.")
        if kind == "enum":
            self._remember(avro)
            return StringType()
        if kind == "fixed":
            self._remember(avro)
            return FixedType(int(avro["size"]))
        if kind == "array":
            element, optional = self._unwrap_nullable(avro["items"], f"{path}[]")
            return ListType(next(self._ids), self.convert(element, f"{path}[]"), not optional)
        if kind == "map":
            value, optional = self._unwrap_nullable(avro["values"], f"{path}{{}}")
            key_id, value_id = next(self._ids), next(self._ids)
            value_type = self.convert(value, f"{path}{{}}")
            return MapType(key_id, StringType(), value_id, value_type, not optional)
        return self.convert(kind, path)

    def _logical(self, avro: dict[str, Any], logical: str, path: str) -> IcebergType:
        if logical == "decimal":
            if "precision" not in avro:
                raise self._error(path, "decimal without precision")
            if avro.get("type") == "fixed":
                self._remember(avro)
            return DecimalType(int(avro["precision"]), int(avro.get("scale", 0)))
        if logical == "timestamp-micros":
            return TimestamptzType()
        if logical == "date":
            return DateType()
        if logical == "time-micros":
            return TimeType()
        if logical in _REFUSED_LOGICAL:
            raise self._error(path, f"{logical} is not allowed: K2 times are UTC microseconds")
        # Unknown logical types fall back to their underlying type, as the Avro spec says.
        return self.convert(avro["type"], path)

    def _unwrap_nullable(self, avro: Any, path: str) -> tuple[Any, bool]:
        if not isinstance(avro, list):
            return avro, False
        branches = [b for b in avro if b != "null"]
        if len(avro) == 2 and len(branches) == 1:
            return branches[0], True
        raise self._error(path, f"union {avro!r}: only [null, T] is supported")

    def _remember(self, named: dict[str, Any]) -> None:
        name = str(named["name"])
        namespace = named.get("namespace")
        self._named[name] = named
        if namespace:
            self._named[f"{namespace}.{name}"] = named

    def _error(self, path: str, message: str) -> ContractError:
        return ContractError(f"{self._where}: field {path}: {message}")


def iceberg_schema(schema: ContractSchema | dict[str, Any]) -> Schema:
    """The Iceberg schema of one Avro record schema, with fresh (new-table) field ids."""
    raw = schema.raw if isinstance(schema, ContractSchema) else schema
    where = str(schema.path) if isinstance(schema, ContractSchema) else str(raw.get("name"))
    struct = _Converter(where).record(raw, "")
    return assign_fresh_schema_ids(Schema(*struct.fields))


def evolve(current: Schema, newer: Schema, *, where: str = "schema") -> Schema:
    """`current` evolved to `newer` exactly as a table's `union_by_name` would do it.

    Raises:
        ContractError: `newer` cannot evolve `current` (a required field added, a type
            narrowed or changed); the message names `where` (a file or table) and the field.
    """
    added = _added_required(current.as_struct(), newer.as_struct(), "")
    if added:
        raise ContractError(
            f"{where}: field {', '.join(added)}: added as required; a field added to an"
            " existing table must be optional (Iceberg cannot fill a required column in old rows)"
        )
    # UpdateSchema needs a transaction only to commit and to validate partition names against
    # the table's specs; a bare stand-in with no specs lets `_apply` compute the schema alone.
    stand_in = SimpleNamespace(
        table_metadata=SimpleNamespace(partition_specs=[], schemas=[current])
    )
    update = UpdateSchema(transaction=stand_in, schema=current)  # type: ignore[arg-type]
    try:
        update.union_by_name(newer)
        applied = update._apply()
    except (ValueError, ValidationError) as e:  # pyiceberg's verdict; it names the column
        raise ContractError(f"{where}: cannot evolve the table schema: {e}") from e
    kept = _decimals_kept(applied.as_struct(), newer.as_struct(), "")
    if kept:
        raise ContractError(f"{where}: field {'; field '.join(kept)}")
    return Schema(*applied.fields)


def _added_required(current: StructType, newer: StructType, path: str) -> list[str]:
    """Dotted paths of required fields of `newer` that `current` lacks (nested structs too)."""
    known = {f.name: f for f in current.fields}
    found: list[str] = []
    for field in newer.fields:
        old = known.get(field.name)
        if old is None:
            if field.required:
                found.append(path + field.name)
        elif isinstance(old.field_type, StructType) and isinstance(field.field_type, StructType):
            found += _added_required(old.field_type, field.field_type, f"{path}{field.name}.")
    return found


def _decimals_kept(applied: StructType, newer: StructType, path: str) -> list[str]:
    """Decimal fields whose type `union_by_name` left unchanged although `newer` differs.

    pyiceberg keeps the table's type, without a word, when it cannot promote it to the new one
    (e.g. decimal(18,8) asked to become decimal(18,6)): producers would then write values of
    one scale into a column of another. K2 refuses that instead.
    """
    have = {f.name: f for f in applied.fields}
    found: list[str] = []
    for field in newer.fields:
        old = have.get(field.name)
        if old is None:
            continue
        if isinstance(old.field_type, StructType) and isinstance(field.field_type, StructType):
            found += _decimals_kept(old.field_type, field.field_type, f"{path}{field.name}.")
        elif isinstance(field.field_type, DecimalType) and field.field_type != old.field_type:
            found.append(
                f"{path}{field.name}: {old.field_type} cannot become {field.field_type}"
                " (decimal precision and scale never change)"
            )
    return found


def iceberg_schema_for_versions(versions: Sequence[ContractSchema]) -> Schema:
    """The Iceberg schema of the newest version, with ids stable across the evolution.

    Raises:
        ContractError: a version cannot evolve the table of the versions before it; the
            message names that version's file and the field.
    """
    if not versions:
        raise ContractError("no schema versions given")
    current = iceberg_schema(versions[0])
    for newer in versions[1:]:
        current = evolve(current, iceberg_schema(newer), where=str(newer.path))
    return current


def arrow_schema(schema: Schema, *, include_field_ids: bool = True) -> pa.Schema:
    """The Arrow schema whose columns are exactly the Iceberg table's types.

    Ingest builds its batches with this schema so appends need no casting: decimals are
    decimal128(p, s), timestamptz is timestamp[us, tz=UTC], strings are large_string.
    """
    result: pa.Schema = schema_to_pyarrow(schema, include_field_ids=include_field_ids)
    return result


def same_structure(left: Schema | IcebergType, right: Schema | IcebergType) -> bool:
    """True when two schemas have the same names, types, optionality and docs (ids ignored)."""
    return bool(_shape(left) == _shape(right))


def _shape(node: Any) -> Any:
    walk: Callable[[Any], Any] = _shape
    if isinstance(node, Schema):
        return tuple(walk(f) for f in node.fields)
    if isinstance(node, NestedField):
        return (node.name, walk(node.field_type), node.required, node.doc)
    if isinstance(node, StructType):
        return ("struct", tuple(walk(f) for f in node.fields))
    if isinstance(node, ListType):
        return ("list", walk(node.element_type), node.element_required)
    if isinstance(node, MapType):
        return ("map", walk(node.key_type), walk(node.value_type), node.value_required)
    return str(node)
