"""Parse one line of the ASX sample files (see ../shared/data/asx/SOURCE.md for the format).

Market rows have no header, `MM/DD/YYYY` dates and `HH:MM:SS.mmm` exchange-local (Sydney)
times. Numbers are validated against a strict pattern and turned into `Decimal` straight from
the text, so no value ever passes through a binary float.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import NamedTuple
from zoneinfo import ZoneInfo

from k2.replay.bad_rows import MalformedRowError

SYDNEY = ZoneInfo("Australia/Sydney")
"""The ASX's local time zone; daylight saving (AEDT, UTC+11) applies until early April."""

_DATE = re.compile(r"(\d{2})/(\d{2})/(\d{4})")
_TIME = re.compile(r"(\d{2}):(\d{2}):(\d{2})\.(\d{3})")
_DECIMAL = re.compile(r"\d+(?:\.\d+)?")
_INTEGER = re.compile(r"\d+")
_ZERO = Decimal(0)

TRADE_FIELDS = 7
QUOTE_FIELDS = 6


class ParsedTrade(NamedTuple):
    """A trade row's values, before identity is attached."""

    local_date: date
    event_time: datetime
    price: Decimal
    size: Decimal
    conditions: list[str]


class ParsedQuote(NamedTuple):
    """A quote row's values; a `None` price/size pair is an empty book side."""

    local_date: date
    event_time: datetime
    bid_price: Decimal | None
    bid_size: Decimal | None
    ask_price: Decimal | None
    ask_size: Decimal | None


@lru_cache(maxsize=4096)
def parse_date(text: str) -> date:
    """`MM/DD/YYYY` to a date (cached: a file has only a handful of distinct dates)."""
    match = _DATE.fullmatch(text)
    if match is None:
        raise MalformedRowError(f"date {text!r} is not MM/DD/YYYY")
    month, day, year = (int(part) for part in match.groups())
    try:
        return date(year, month, day)
    except ValueError as e:
        raise MalformedRowError(f"date {text!r}: {e}") from e


def local_to_utc(local_date: date, time_text: str) -> datetime:
    """Exchange-local `HH:MM:SS.mmm` on `local_date` to an aware UTC datetime.

    zoneinfo applies the DST rule of that exact date, so March 2014 converts at UTC+11.
    """
    match = _TIME.fullmatch(time_text)
    if match is None:
        raise MalformedRowError(f"time {time_text!r} is not HH:MM:SS.mmm")
    hour, minute, second, milli = (int(part) for part in match.groups())
    try:
        local = datetime(
            local_date.year,
            local_date.month,
            local_date.day,
            hour,
            minute,
            second,
            milli * 1000,
            tzinfo=SYDNEY,
        )
    except ValueError as e:
        raise MalformedRowError(f"time {time_text!r}: {e}") from e
    return local.astimezone(UTC)


def parse_decimal(name: str, text: str) -> Decimal:
    """A non-negative decimal written as digits with an optional fraction."""
    if _DECIMAL.fullmatch(text) is None:
        raise MalformedRowError(f"{name} {text!r} is not a plain non-negative decimal")
    return Decimal(text)


def parse_integer(name: str, text: str) -> Decimal:
    """A non-negative whole number (share volumes), as an exact Decimal."""
    if _INTEGER.fullmatch(text) is None:
        raise MalformedRowError(f"{name} {text!r} is not a non-negative integer")
    return Decimal(text)


def split_row(text: str, expected: int) -> list[str]:
    """Split a row on commas, refusing the wrong number of columns."""
    fields = text.split(",")
    if len(fields) != expected:
        raise MalformedRowError(f"expected {expected} columns, found {len(fields)}")
    return fields


def parse_trade(text: str) -> ParsedTrade:
    """`Date, Time, Price, Volume, Qualifiers, Venue, BuyerID`.

    The qualifier, venue and the doubtful `BuyerID` column are kept as published, as
    conditions, so no source column is lost.
    """
    date_text, time_text, price_text, volume_text, qualifier, venue, buyer = split_row(
        text, TRADE_FIELDS
    )
    local_date = parse_date(date_text)
    price = parse_decimal("price", price_text)
    if price == _ZERO:
        raise MalformedRowError("price is zero")
    size = parse_integer("volume", volume_text)
    if size == _ZERO:
        raise MalformedRowError("volume is zero")
    if _INTEGER.fullmatch(qualifier) is None:
        raise MalformedRowError(f"qualifier {qualifier!r} is not an integer code")
    conditions = [f"qualifier:{int(qualifier)}"]
    if venue:
        conditions.append(f"venue:{venue}")
    if buyer:
        # Upstream calls it BuyerID but the values look like prices: keep it, label it raw.
        conditions.append(f"buyer_id:{buyer}")
    return ParsedTrade(local_date, local_to_utc(local_date, time_text), price, size, conditions)


def _side(name: str, price_text: str, size_text: str) -> tuple[Decimal | None, Decimal | None]:
    """A book side; price 0 with size 0 means the side is empty (first row of a day)."""
    price = parse_decimal(f"{name} price", price_text)
    size = parse_integer(f"{name} volume", size_text)
    if price == _ZERO and size == _ZERO:
        return None, None
    if _ZERO in (price, size):
        raise MalformedRowError(f"{name} side has price {price_text!r} but volume {size_text!r}")
    return price, size


def parse_quote(text: str) -> ParsedQuote:
    """`Date, Time, BidPrice, AskPrice, BidVolume, AskVolume` (the order the data shows).

    Crossed quotes (bid > ask) are real auction-period states and are kept.
    """
    date_text, time_text, bid_text, ask_text, bid_volume, ask_volume = split_row(text, QUOTE_FIELDS)
    local_date = parse_date(date_text)
    bid_price, bid_size = _side("bid", bid_text, bid_volume)
    ask_price, ask_size = _side("ask", ask_text, ask_volume)
    return ParsedQuote(
        local_date,
        local_to_utc(local_date, time_text),
        bid_price,
        bid_size,
        ask_price,
        ask_size,
    )
