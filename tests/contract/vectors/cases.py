"""Golden wire-format vectors: the records, and how they are stored as JSON.

Each vector is `<schema>.v<N>.<case>.bin` (Confluent-framed Avro, as K2's serializer writes it)
beside `<schema>.v<N>.<case>.json` (`schema`, `version`, `schema_id`, and `record` with
decimals as strings, timestamps as ISO-8601 UTC with microseconds, dates as ISO dates).
The ingest decoder must turn each `.bin` into exactly the `.json` record.
Decimals are written at their schema scale, as a decoder returns them.
Regenerate (only when a case is added): `K2_REGEN_VECTORS=1 pytest tests/contract -k vectors`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

T0 = datetime(2024, 3, 1, 23, 59, 59, 999999, tzinfo=UTC)
T1 = datetime(2024, 3, 2, 0, 0, 0, 1, tzinfo=UTC)

TRADE_V1 = {
    "trade_id": "XASX-20240301-000001",
    "exchange": "XASX",
    "symbol": "BHP",
    "instrument_id": "AU000000BHP4",
    "venue_sequence": 9_007_199_254_740_993,  # above 2**53: breaks anything using floats
    "event_time": T0,
    "event_time_nanos": 1_709_337_599_999_999_123,
    "receive_time": T1,
    "price": Decimal("45.12345678"),
    "size": Decimal("12345678901234567890.00000001"),  # full decimal(28,8)
    "currency": "AUD",
    "side": "SELL",
    "conditions": ["XT", "venue:CXA"],
}

CASES: dict[tuple[str, int, str], tuple[int, dict[str, Any]]] = {
    ("trade", 1, "full"): (1, TRADE_V1),
    (
        "trade",
        1,
        "nulls",
    ): (
        1,
        {
            **TRADE_V1,
            "instrument_id": None,
            "event_time_nanos": None,
            "price": Decimal("0.00000001"),
            "size": Decimal("-1.00000000"),
            "side": "UNKNOWN",
            "conditions": [],
        },
    ),
    ("trade", 2, "full"): (
        2,
        {
            **TRADE_V1,
            "buyer_broker_id": "01234",
            "seller_broker_id": "ß-日本",  # non-ASCII survives byte for byte
            "settlement_date": date(2024, 3, 5),
        },
    ),
    ("quote", 1, "two_sided"): (
        3,
        {
            "quote_id": "XASX-Q-1",
            "exchange": "XASX",
            "symbol": "CBA",
            "instrument_id": None,
            "venue_sequence": 42,
            "event_time": datetime(1970, 1, 1, tzinfo=UTC),
            "event_time_nanos": None,
            "receive_time": T1,
            "bid_price": Decimal("9999999999.99999999"),
            "bid_size": Decimal("100.00000000"),
            "ask_price": Decimal("10000000000.00000000") - Decimal("0.00000001"),
            "ask_size": Decimal("0.50000000"),
            "currency": "AUD",
        },
    ),
    ("quote", 2, "one_sided"): (
        4,
        {
            "quote_id": "XASX-Q-2",
            "exchange": "XASX",
            "symbol": "CBA",
            "instrument_id": "AU000000CBA7",
            "venue_sequence": 43,
            "event_time": T0,
            "event_time_nanos": None,
            "receive_time": T1,
            "bid_price": Decimal("101.50000000"),
            "bid_size": Decimal("7.00000000"),
            "ask_price": None,
            "ask_size": None,
            "currency": "AUD",
            "bid_order_count": 3,
            "ask_order_count": None,
        },
    ),
    ("reference_data", 1, "current"): (
        5,
        {
            "exchange": "XASX",
            "symbol": "BHP",
            "instrument_id": "AU000000BHP4",
            "vendor_id": None,
            "name": "BHP Group Limited",
            "currency": "AUD",
            "valid_from": date(2001, 6, 29),
            "valid_to": None,
            "event_time": T0,
            "receive_time": T1,
        },
    ),
}


def to_json(value: Any) -> Any:
    """The JSON form of a decoded value (exact: no floats)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    return value
