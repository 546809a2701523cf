"""Typed record shapes matching contracts/schemas/*.v1.avsc (what the Avro serializers take)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import TypedDict


class TradeRecord(TypedDict):
    """One `Trade` (contracts/schemas/trade.v1.avsc)."""

    trade_id: str
    exchange: str
    symbol: str
    instrument_id: str | None
    venue_sequence: int
    event_time: datetime
    event_time_nanos: int | None
    receive_time: datetime
    price: Decimal
    size: Decimal
    currency: str
    side: str
    conditions: list[str]


class QuoteRecord(TypedDict):
    """One `Quote` (contracts/schemas/quote.v1.avsc); a `None` side is an empty book side."""

    quote_id: str
    exchange: str
    symbol: str
    instrument_id: str | None
    venue_sequence: int
    event_time: datetime
    event_time_nanos: int | None
    receive_time: datetime
    bid_price: Decimal | None
    bid_size: Decimal | None
    ask_price: Decimal | None
    ask_size: Decimal | None
    currency: str


class ReferenceDataRecord(TypedDict):
    """One `ReferenceData` (contracts/schemas/reference_data.v1.avsc)."""

    exchange: str
    symbol: str
    instrument_id: str
    vendor_id: str | None
    name: str
    currency: str
    valid_from: date
    valid_to: date | None
    event_time: datetime
    receive_time: datetime
