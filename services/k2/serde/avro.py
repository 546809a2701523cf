"""Framed Avro encoding of one contract schema, without a registry (the schema id is given).

Values must already be exact: `Decimal` for decimals (a value needing more scale or precision
than the schema allows is refused, never rounded) and timezone-aware `datetime` (or integer
microseconds) for `timestamp-micros`.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import fastavro

from k2.contracts.schemas import ContractSchema
from k2.errors import K2Error
from k2.serde.wire import Framed


class SerializationError(K2Error):
    """A record does not fit its schema."""


class FramedAvroWriter:
    """Encodes records of one schema version into Confluent-framed Avro."""

    def __init__(self, schema: ContractSchema, schema_id: int) -> None:
        self.schema = schema
        self.schema_id = schema_id
        self._parsed = schema.parsed
        self._decimals = _decimal_fields(schema.raw)

    def encode(self, record: Mapping[str, Any]) -> bytes:
        """The framed payload of `record`."""
        self._check_decimals(record)
        buffer = io.BytesIO()
        try:
            fastavro.schemaless_writer(buffer, self._parsed, dict(record))
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as e:
            raise SerializationError(f"{self.schema.full_name}: cannot encode record: {e}") from e
        return Framed(self.schema_id, buffer.getvalue()).to_bytes()

    def _check_decimals(self, record: Mapping[str, Any]) -> None:
        # fastavro checks scale but not precision; an overflow would otherwise surface only
        # when Iceberg refuses the row, far from the producer that caused it.
        for name, (precision, scale) in self._decimals.items():
            value = record.get(name)
            if value is None:
                continue
            if not isinstance(value, Decimal) or not value.is_finite():
                raise SerializationError(f"{self.schema.full_name}.{name}: expected Decimal")
            exponent = int(value.as_tuple().exponent)
            if -exponent > scale:
                raise SerializationError(
                    f"{self.schema.full_name}.{name}: {value} has more than {scale} decimals"
                )
            integer_digits = max(value.adjusted() + 1, 0)
            if integer_digits > precision - scale:
                raise SerializationError(
                    f"{self.schema.full_name}.{name}: {value} exceeds decimal({precision},{scale})"
                )


def _decimal_fields(raw: Mapping[str, Any]) -> dict[str, tuple[int, int]]:
    found: dict[str, tuple[int, int]] = {}
    for field in raw.get("fields", []):
        kind = field["type"]
        branches = kind if isinstance(kind, list) else [kind]
        for branch in branches:
            if isinstance(branch, dict) and branch.get("logicalType") == "decimal":
                found[field["name"]] = (int(branch["precision"]), int(branch.get("scale", 0)))
    return found


def decode_body(schema: ContractSchema, body: bytes) -> dict[str, Any]:
    """Reference decoder (fastavro) of an Avro body written with `schema`."""
    record = fastavro.schemaless_reader(io.BytesIO(body), schema.parsed, None)
    if not isinstance(record, dict):
        raise SerializationError(f"{schema.full_name}: body did not decode to a record")
    return record
