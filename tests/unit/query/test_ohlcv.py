"""OHLCV bars against an independent pure-Python Decimal computation on the real BHP trades."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest

from k2.query.ohlcv import Interval, bars, bars_table, vwap
from k2.replay.asx import AsxSource, Dataset
from k2.replay.bad_rows import BadRowReport
from k2.replay.records import TradeRecord

SYDNEY = ZoneInfo("Australia/Sydney")
SCHEMA = pa.schema(
    [
        ("event_time", pa.timestamp("us", "UTC")),
        ("venue_sequence", pa.int64()),
        ("price", pa.decimal128(18, 8)),
        ("size", pa.decimal128(28, 8)),
    ]
)


def _table(trades: list[TradeRecord]) -> pa.Table:
    return pa.Table.from_pylist(
        [{k: t[k] for k in SCHEMA.names} for t in trades],  # type: ignore[literal-required]
        schema=SCHEMA,
    )


def _reference_bars(
    trades: list[TradeRecord], minutes: int | None
) -> dict[datetime, tuple[Decimal, ...]]:
    """Straightforward Python: local wall-clock buckets, trades in (time, sequence) order."""
    buckets: dict[datetime, list[TradeRecord]] = defaultdict(list)
    for trade in sorted(trades, key=lambda t: (t["event_time"], t["venue_sequence"])):
        local = trade["event_time"].astimezone(SYDNEY)
        if minutes is None:
            start = local.replace(hour=0, minute=0, second=0, microsecond=0)
        else:
            since_midnight = local.hour * 60 + local.minute
            floored = since_midnight - since_midnight % minutes
            start = local.replace(hour=floored // 60, minute=floored % 60, second=0, microsecond=0)
        buckets[start.astimezone(UTC)].append(trade)
    out = {}
    for start, group in buckets.items():
        prices = [t["price"] for t in group]
        volume = sum((t["size"] for t in group), Decimal(0))
        with localcontext() as ctx:
            ctx.prec = 100
            notional = sum((t["price"] * t["size"] for t in group), Decimal(0))
            average = (notional / volume).quantize(Decimal("1e-8"), rounding=ROUND_HALF_EVEN)
        out[start] = (
            prices[0],
            max(prices),
            min(prices),
            prices[-1],
            volume,
            average,
            Decimal(len(group)),
        )
    return out


@pytest.fixture(scope="module")
def bhp_trades(asx_data_dir: Path) -> list[TradeRecord]:
    source = AsxSource(asx_data_dir)
    (bhp,) = [f for f in source.market_files(Dataset.TRADES) if f.company.symbol == "BHP"]
    return list(source.trades(bhp, BadRowReport()))


@pytest.mark.parametrize(
    ("interval", "minutes"),
    [
        (Interval.ONE_MINUTE, 1),
        (Interval.FIVE_MINUTES, 5),
        (Interval.ONE_HOUR, 60),
        (Interval.ONE_DAY, None),
    ],
)
def test_bars_match_independent_computation(
    bhp_trades: list[TradeRecord], interval: Interval, minutes: int | None
) -> None:
    got = {
        b.start: (b.open, b.high, b.low, b.close, b.volume, b.vwap, Decimal(b.trades))
        for b in bars(_table(bhp_trades), interval, SYDNEY)
    }
    assert got == _reference_bars(bhp_trades, minutes)
    assert sum(v[6] for v in got.values()) == len(bhp_trades)


def test_daily_bars_are_local_trading_days(bhp_trades: list[TradeRecord]) -> None:
    daily = bars(_table(bhp_trades), Interval.ONE_DAY, SYDNEY)
    # Five trading days; each starts at Sydney midnight = 13:00 UTC the day before (AEDT).
    assert [b.start for b in daily] == [
        datetime(2014, 3, 9, 13, tzinfo=UTC) + timedelta(days=d) for d in range(5)
    ]
    assert [b.trades for b in daily] == [17000, 21681, 20283, 16309, 16358]


def test_no_bar_without_trades_and_open_close_order() -> None:
    t0 = datetime(2014, 3, 10, 0, 0, 10, tzinfo=UTC)
    trades = pa.Table.from_pylist(
        [
            # Same timestamp: venue_sequence decides open and close, not input order.
            {"event_time": t0, "venue_sequence": 2, "price": Decimal("10.2"), "size": Decimal(1)},
            {"event_time": t0, "venue_sequence": 1, "price": Decimal("10.1"), "size": Decimal(3)},
            {
                "event_time": t0 + timedelta(minutes=7),
                "venue_sequence": 3,
                "price": Decimal("10.3"),
                "size": Decimal(2),
            },
        ],
        schema=SCHEMA,
    )
    result = bars(trades, Interval.ONE_MINUTE, ZoneInfo("UTC"))
    assert [b.start.minute for b in result] == [0, 7]  # nothing for minutes 1..6
    first = result[0]
    assert (first.open, first.close) == (Decimal("10.1"), Decimal("10.2"))
    assert first.volume == Decimal(4)
    assert first.vwap == Decimal("10.12500000")  # (30.3 + 10.2) / 4
    assert bars(trades.slice(0, 0), Interval.ONE_MINUTE, ZoneInfo("UTC")) == []
    table = bars_table(result, ZoneInfo("UTC"))
    assert table.num_rows == 2
    assert table["vwap"][0].as_py() == Decimal("10.12500000")


def test_vwap_rounds_half_even_once() -> None:
    assert vwap(Decimal("1"), Decimal("3")) == Decimal("0.33333333")
    assert vwap(Decimal("0.000000125"), Decimal("1")) == Decimal("0.00000012")
    assert vwap(Decimal("0.000000135"), Decimal("1")) == Decimal("0.00000014")
