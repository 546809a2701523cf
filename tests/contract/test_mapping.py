"""The one Avro→Iceberg/Arrow mapping: exact types, optionality and stable field ids."""

from __future__ import annotations

import shutil
from pathlib import Path
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

from k2.contracts.catalogue import load_catalogue
from k2.contracts.mapping import (
    arrow_schema,
    evolve,
    iceberg_schema,
    iceberg_schema_for_versions,
    same_structure,
)
from k2.contracts.schemas import all_schemas, load_schema, schema_versions
from k2.errors import ContractError

CONTRACTS = Path(__file__).resolve().parents[2] / "contracts"
INCOMPATIBLE = Path(__file__).parent / "incompatible"


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


def test_evolution_refuses_an_added_required_field_naming_file_and_field() -> None:
    with pytest.raises(ContractError) as raised:
        iceberg_schema_for_versions(all_schemas(INCOMPATIBLE)["trade"])
    message = str(raised.value)
    assert "trade.v3.avsc: field venue_trade_type: added as required" in message


def _decimal(precision: int, scale: int) -> dict[str, Any]:
    return {"type": "bytes", "logicalType": "decimal", "precision": precision, "scale": scale}


def test_evolution_refuses_a_decimal_rescale_that_pyiceberg_would_ignore() -> None:
    old, new = iceberg_schema(_record(_decimal(18, 8))), iceberg_schema(_record(_decimal(18, 6)))
    with pytest.raises(ContractError, match=r"^r\.v2\.avsc: field f: decimal\(18, 8\) cannot"):
        evolve(old, new, where="r.v2.avsc")
    widened = evolve(old, iceberg_schema(_record(_decimal(20, 8))), where="r.v2.avsc")
    assert widened.find_field("f").field_type == DecimalType(20, 8)


def test_evolution_turns_pyiceberg_refusals_into_contract_errors() -> None:
    old, new = iceberg_schema(_record(_decimal(18, 8))), iceberg_schema(_record("string"))
    with pytest.raises(ContractError, match=r"^r\.v2\.avsc: cannot evolve .* f: ") as raised:
        evolve(old, new, where="r.v2.avsc")
    assert raised.value.__cause__ is not None  # pyiceberg's own error, kept as the cause


def test_catalogue_over_a_broken_history_names_catalogue_schema_file_and_field(
    tmp_path: Path,
) -> None:
    root = tmp_path / "contracts"
    shutil.copytree(CONTRACTS, root)
    shutil.copy(INCOMPATIBLE / "schemas" / "trade.v3.avsc", root / "schemas" / "trade.v3.avsc")
    with pytest.raises(ContractError) as raised:
        load_catalogue(root / "catalogue.yaml")
    message = str(raised.value)
    assert f"{root / 'catalogue.yaml'}: datasets.trades.schema: " in message
    assert f"{root / 'schemas' / 'trade.v3.avsc'}: field venue_trade_type" in message
