"""The one Avro→Iceberg/Arrow mapping: exact types, optionality and stable field ids."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest
from pyiceberg.types import (
    DateType,
    DecimalType,
    ListType,
    LongType,
    StringType,
    TimestamptzType,
)

from k2.contracts.mapping import (
    arrow_schema,
    iceberg_schema,
    iceberg_schema_for_versions,
    same_structure,
)
from k2.contracts.schemas import load_schema, schema_versions
from k2.errors import ContractError


def test_trade_types_and_optionality() -> None:
    schema = iceberg_schema(load_schema("trade", 1))
    field = schema.find_field
    assert field("price").field_type == DecimalType(18, 8) and field("price").required
    assert field("size").field_type == DecimalType(28, 8)
    assert field("event_time").field_type == TimestamptzType() and field("event_time").required
    assert (
        field("event_time_nanos").field_type == LongType()
        and not field("event_time_nanos").required
    )
    assert field("instrument_id").field_type == StringType() and not field("instrument_id").required
    assert field("side").field_type == StringType()
    conditions = field("conditions").field_type
    assert isinstance(conditions, ListType) and conditions.element_type == StringType()
    assert conditions.element_required
    assert field("price").doc == "Trade price in the quote currency, exact decimal."


def test_reference_dates_and_quote_nullable_decimals() -> None:
    ref = iceberg_schema(load_schema("reference_data", 1))
    assert (
        ref.find_field("valid_from").field_type == DateType()
        and ref.find_field("valid_from").required
    )
    assert not ref.find_field("valid_to").required
    quote = iceberg_schema(load_schema("quote", 1))
    assert quote.find_field("bid_price").field_type == DecimalType(18, 8)
    assert not quote.find_field("bid_price").required


def test_field_ids_are_stable_across_versions() -> None:
    v1 = iceberg_schema(load_schema("trade", 1))
    evolved = iceberg_schema_for_versions(schema_versions("trade"))
    for old in v1.fields:
        assert evolved.find_field(old.name).field_id == old.field_id
    assert [f.field_id for f in evolved.fields[len(v1.fields) :]] == [15, 16, 17]
    # Same columns as a fresh mapping of the newest version; only ids may differ.
    assert same_structure(evolved, iceberg_schema(load_schema("trade", 2)))


def test_arrow_schema_uses_exact_types() -> None:
    arrow = arrow_schema(
        iceberg_schema_for_versions(schema_versions("trade")), include_field_ids=False
    )
    assert arrow.field("price").type == pa.decimal128(18, 8)
    assert arrow.field("event_time").type == pa.timestamp("us", tz="UTC")
    assert not arrow.field("event_time").nullable
    assert arrow.field("instrument_id").nullable
    assert arrow.field("settlement_date").type == pa.date32()


def _record(field_type: Any) -> dict[str, Any]:
    return {"type": "record", "name": "R", "fields": [{"name": "f", "type": field_type}]}


@pytest.mark.parametrize(
    ("field_type", "message"),
    [
        ({"type": "long", "logicalType": "timestamp-millis"}, "timestamp-millis is not allowed"),
        (["null", "string", "long"], "only [null, T] is supported"),
        ("Unknown", "unknown Avro type"),
    ],
)
def test_mapping_refuses_what_k2_forbids(field_type: Any, message: str) -> None:
    with pytest.raises(
        ContractError, match=r"field f: .*" + message.replace("[", r"\[").replace("]", r"\]")
    ):
        iceberg_schema(_record(field_type))
