"""The query operations behind `k2 query`, on a catalog: rows of a table, OHLCV bars."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pyarrow as pa
from pyiceberg.catalog import Catalog

from k2.contracts.catalogue import Catalogue
from k2.query.ohlcv import OHLCV_COLUMNS, Interval, bars, bars_table
from k2.query.scan import load_table, scan
from k2.query.snapshots import resolve_as_of
from k2.query.time_range import TimeRange


def query_rows(
    catalog: Catalog,
    catalogue: Catalogue,
    dataset: str,
    window: TimeRange,
    *,
    symbol: str | None,
    as_of: str | None = None,
    tz: ZoneInfo = ZoneInfo("UTC"),
) -> pa.Table:
    """Rows of the dataset's table in `window` (and `symbol`), as of a snapshot or time."""
    table = load_table(catalog, catalogue.dataset(dataset).table_identifier)
    return scan(table, window, symbol=symbol, snapshot_id=resolve_as_of(table, as_of, tz))


def query_ohlcv(
    catalog: Catalog,
    catalogue: Catalogue,
    window: TimeRange,
    *,
    symbol: str,
    interval: Interval,
    tz: ZoneInfo,
    as_of: str | None = None,
) -> pa.Table:
    """OHLCV bars of `symbol`'s trades in `window`, buckets aligned in `tz`."""
    table = load_table(catalog, catalogue.dataset("trades").table_identifier)
    trades = scan(
        table,
        window,
        symbol=symbol,
        snapshot_id=resolve_as_of(table, as_of, tz),
        columns=OHLCV_COLUMNS,
    )
    return bars_table(bars(trades, interval, tz), tz)


def symbols_in(
    catalog: Catalog, catalogue: Catalogue, dataset: str, window: TimeRange
) -> list[str]:
    """The symbols with rows in the dataset's table in `window`, sorted (current snapshot)."""
    table = load_table(catalog, catalogue.dataset(dataset).table_identifier)
    found = scan(table, window, columns=("symbol", "event_time"))
    return sorted(set(found["symbol"].to_pylist()))
