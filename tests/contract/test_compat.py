"""Each version is compatible with every earlier one; the deliberately broken history is not."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import fastavro
import pytest

from k2.contracts.compat import check_versions
from k2.contracts.schemas import all_schemas, load_schema, schema_versions

INCOMPATIBLE = Path(__file__).parent / "incompatible"

TRADE_V1 = {
    "trade_id": "T1",
    "exchange": "XASX",
    "symbol": "BHP",
    "instrument_id": None,
    "venue_sequence": 1,
    "event_time": datetime(2024, 1, 2, 3, 4, 5, 123456, tzinfo=UTC),
    "event_time_nanos": None,
    "receive_time": datetime(2024, 1, 2, 3, 4, 5, 200001, tzinfo=UTC),
    "price": Decimal("45.12000000"),
    "size": Decimal("100.00000000"),
    "currency": "AUD",
    "side": "BUY",
    "conditions": ["XT"],
}


@pytest.mark.parametrize("name", ["trade", "quote", "reference_data"])
def test_each_version_reads_every_earlier_one(name: str) -> None:
    assert check_versions(schema_versions(name)) == []


def test_incompatible_history_is_refused_naming_file_and_field() -> None:
    problems = check_versions(all_schemas(INCOMPATIBLE)["trade"])
    text = "\n".join(problems)
    assert "trade.v3.avsc" in text
    assert "price: decimal changed from (18, 8) to (18, 6)" in text
    assert "venue_trade_type: new field without a default" in text
    assert "venue_trade_type: a field added after v1 must be [null, T]" in text


def test_v2_reader_resolves_v1_data_with_fastavro() -> None:
    # Independent check of the local checker with Avro's own schema resolution.
    v1, v2 = load_schema("trade", 1), load_schema("trade", 2)
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, v1.parsed, TRADE_V1)
    buffer.seek(0)
    record = fastavro.schemaless_reader(buffer, v1.parsed, v2.parsed)
    assert record == {
        **TRADE_V1,
        "buyer_broker_id": None,
        "seller_broker_id": None,
        "settlement_date": None,
    }
