"""OHLCV bars from trades, exact to the last decimal.

open/high/low/close are trade prices (never averaged), volume is the exact sum of sizes and
VWAP = sum(price * size) / sum(size), computed from an exact decimal256 notional and rounded
once, to `VWAP_SCALE` decimal places with ROUND_HALF_EVEN. Buckets are aligned to wall-clock
boundaries in the requested time zone (a 1d bar is a local trading day); a bucket without a
trade has no bar. Open/close are the first/last trade by (event_time, venue_sequence).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Context, Decimal
from enum import StrEnum
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc

from k2.query.errors import QueryError

VWAP_SCALE = 8
"""Decimal places of VWAP: the price scale of the trade contract (decimal(18, 8))."""
_VWAP_QUANTUM = Decimal(1).scaleb(-VWAP_SCALE)
_EXACT = Context(prec=80)  # wider than decimal256's 76 digits: the division is the only rounding
OHLCV_COLUMNS = ("event_time", "venue_sequence", "price", "size")


class Interval(StrEnum):
    """Bar widths the CLI offers."""

    ONE_MINUTE = "1m"
    FIVE_MINUTES = "5m"
    ONE_HOUR = "1h"
    ONE_DAY = "1d"

    @property
    def temporal(self) -> tuple[int, str]:
        """(multiple, unit) for Arrow's floor_temporal."""
        return {
            Interval.ONE_MINUTE: (1, "minute"),
            Interval.FIVE_MINUTES: (5, "minute"),
            Interval.ONE_HOUR: (1, "hour"),
            Interval.ONE_DAY: (1, "day"),
        }[self]


@dataclass(frozen=True)
class Bar:
    """One OHLCV bar; `start` is the bucket's first instant (UTC)."""

    start: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    vwap: Decimal
    trades: int


def vwap(notional: Decimal, volume: Decimal) -> Decimal:
    """sum(price*size)/sum(size), rounded half-even to VWAP_SCALE places."""
    if volume == 0:
        raise QueryError("VWAP of a bar with zero volume")
    return _EXACT.divide(notional, volume).quantize(_VWAP_QUANTUM, rounding=ROUND_HALF_EVEN)


def bars(trades: pa.Table, interval: Interval, tz: ZoneInfo) -> list[Bar]:
    """Bars of `trades` (columns event_time, venue_sequence, price, size), oldest first."""
    if trades.num_rows == 0:
        return []
    trades = sort_trades(trades)
    multiple, unit = interval.temporal
    local = trades["event_time"].cast(pa.timestamp("us", tz=str(tz)))
    # Flooring a zoned timestamp floors its local wall time: 1d buckets are local days.
    bucket = pc.floor_temporal(local, multiple=multiple, unit=unit).cast(pa.timestamp("us", "UTC"))
    price = trades["price"]
    size = trades["size"]
    notional = pc.multiply(
        price.cast(pa.decimal256(price.type.precision, price.type.scale)),
        size.cast(pa.decimal256(size.type.precision, size.type.scale)),
    )
    table = pa.table(
        {"bucket": bucket, "price": price, "size": size, "notional": notional}
    ).append_column("row", pa.array(range(trades.num_rows), pa.int64()))
    # Rows are in trade order, so each bucket's first/last row index is its open/close trade
    # (Arrow has no first/last kernel for decimals).
    grouped = (
        table.group_by("bucket", use_threads=False)
        .aggregate(
            [
                ("price", "min"),
                ("price", "max"),
                ("size", "sum"),
                ("notional", "sum"),
                ("row", "min"),
                ("row", "max"),
                ("row", "count"),
            ]
        )
        .sort_by([("bucket", "ascending")])
    )
    opens = pc.take(price, grouped["row_min"])
    closes = pc.take(price, grouped["row_max"])
    out = []
    for i, row in enumerate(grouped.to_pylist()):
        volume: Decimal = row["size_sum"]
        out.append(
            Bar(
                start=row["bucket"],
                open=opens[i].as_py(),
                high=row["price_max"],
                low=row["price_min"],
                close=closes[i].as_py(),
                volume=volume,
                vwap=vwap(row["notional_sum"], volume),
                trades=row["row_count"],
            )
        )
    return out


def sort_trades(trades: pa.Table) -> pa.Table:
    """Trade order: event time, then venue sequence (source order on equal timestamps)."""
    return trades.sort_by([("event_time", "ascending"), ("venue_sequence", "ascending")])


def bars_table(bar_list: list[Bar], tz: ZoneInfo) -> pa.Table:
    """Bars as Arrow (decimals kept exact) with the bucket start in UTC and in `tz`."""
    price_type = pa.decimal128(18, 8)
    return pa.table(
        {
            "bar_start": pa.array([b.start for b in bar_list], pa.timestamp("us", "UTC")),
            "bar_start_local": pa.array(
                [b.start for b in bar_list], pa.timestamp("us", "UTC")
            ).cast(pa.timestamp("us", str(tz))),
            "open": pa.array([b.open for b in bar_list], price_type),
            "high": pa.array([b.high for b in bar_list], price_type),
            "low": pa.array([b.low for b in bar_list], price_type),
            "close": pa.array([b.close for b in bar_list], price_type),
            "volume": pa.array([b.volume for b in bar_list], pa.decimal128(38, 8)),
            "vwap": pa.array([b.vwap for b in bar_list], pa.decimal128(38, VWAP_SCALE)),
            "trades": pa.array([b.trades for b in bar_list], pa.int64()),
        }
    )
