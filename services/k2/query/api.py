"""K2 from Python: trades, quotes and OHLCV bars as Arrow tables, with time travel.

The same queries as `k2 query`, for notebooks and scripts (no subprocess). The stack is found
as every command finds it (`k2.discovery`): the `K2_*` variables, else the running local
stack. Times without an offset are wall time in `tz`; `as_of` is a snapshot id or a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from types import TracebackType
from zoneinfo import ZoneInfo

import pyarrow as pa
from pyiceberg.catalog import Catalog

from k2.catalog import load_catalog
from k2.contracts.catalogue import Catalogue, load_catalogue
from k2.discovery import find_endpoints
from k2.errors import UsageError
from k2.query.ohlcv import Interval
from k2.query.output import select_columns
from k2.query.scan import load_table
from k2.query.service import query_ohlcv, query_rows, symbols_in
from k2.query.time_range import TimeRange, zone
from k2.service_errors import service_errors
from k2.settings import Endpoints

Instant = str | datetime | date
"""A window bound: ISO-8601 text, a datetime (naive = wall time in `tz`) or a date."""


def _text(value: Instant) -> str:
    return value if isinstance(value, str) else value.isoformat()


def window(start: Instant, end: Instant | None, tz: ZoneInfo) -> TimeRange:
    """The half-open UTC window `[start, end)`; no end means one day after start."""
    return TimeRange.parse(_text(start), None if end is None else _text(end), tz)


class Reader:
    """A connection to K2's tables; use it as a context manager (it closes its catalog)."""

    def __init__(self, endpoints: Endpoints | None = None, *, prefix: str = "") -> None:
        catalogue = load_catalogue()
        self.catalogue: Catalogue = catalogue.with_prefix(prefix) if prefix else catalogue
        with service_errors():
            self.catalog: Catalog = load_catalog(endpoints or find_endpoints())

    def __enter__(self) -> Reader:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the catalog client (its HTTP session)."""
        self.catalog.close()

    def rows(
        self,
        dataset: str,
        symbol: str | None,
        start: Instant,
        end: Instant | None = None,
        *,
        tz: str = "UTC",
        as_of: str | int | None = None,
        columns: Sequence[str] | None = None,
    ) -> pa.Table:
        """Rows of `dataset` (trades, quotes, reference data) in `[start, end)`, time order."""
        zone_info = zone(tz)
        span = window(start, end, zone_info)
        with service_errors():
            result = query_rows(
                self.catalog,
                self.catalogue,
                dataset,
                span,
                symbol=symbol,
                as_of=None if as_of is None else str(as_of),
                tz=zone_info,
            )
        return select_columns(result, columns)

    def ohlcv(
        self,
        symbol: str,
        start: Instant,
        end: Instant | None = None,
        *,
        interval: str = "5m",
        tz: str = "UTC",
        as_of: str | int | None = None,
    ) -> pa.Table:
        """OHLCV bars of `symbol` (exact decimals; buckets aligned to wall time in `tz`)."""
        zone_info = zone(tz)
        span = window(start, end, zone_info)
        width = _interval(interval)
        with service_errors():
            return query_ohlcv(
                self.catalog,
                self.catalogue,
                span,
                symbol=symbol,
                interval=width,
                tz=zone_info,
                as_of=None if as_of is None else str(as_of),
            )

    def snapshots(self, dataset: str) -> pa.Table:
        """The table's snapshots, oldest first: ids and commit times to pass as `as_of`."""
        with service_errors():
            table = load_table(self.catalog, self.catalogue.dataset(dataset).table_identifier)
        history = table.snapshots()
        return pa.table(
            {
                "snapshot_id": pa.array([s.snapshot_id for s in history], pa.int64()),
                "committed_at": pa.array(
                    [datetime.fromtimestamp(s.timestamp_ms / 1000, UTC) for s in history],
                    pa.timestamp("ms", "UTC"),
                ),
                "operation": [s.summary.operation.value if s.summary else None for s in history],
                "added_records": [
                    int(s.summary.get("added-records", 0) or 0) if s.summary else 0 for s in history
                ],
            }
        )

    def symbols(
        self, dataset: str, start: Instant, end: Instant | None = None, *, tz: str = "UTC"
    ) -> list[str]:
        """The symbols with rows in `dataset` in `[start, end)`, sorted."""
        with service_errors():
            return symbols_in(self.catalog, self.catalogue, dataset, window(start, end, zone(tz)))


def _interval(text: str) -> Interval:
    try:
        return Interval(text)
    except ValueError as e:
        choices = ", ".join(i.value for i in Interval)
        raise UsageError(f"interval {text!r} is not one of {choices}") from e


def trades(
    symbol: str | None,
    start: Instant,
    end: Instant | None = None,
    *,
    tz: str = "UTC",
    as_of: str | int | None = None,
    columns: Sequence[str] | None = None,
    endpoints: Endpoints | None = None,
    prefix: str = "",
) -> pa.Table:
    """Trades of `symbol` (None: every symbol) in `[start, end)`, as an Arrow table.

    Example (ASX times are Sydney wall time)::

        import k2.query
        t = k2.query.trades("BHP", "2014-03-10T10:00", "2014-03-10T10:05", tz="Australia/Sydney")
    """
    with Reader(endpoints, prefix=prefix) as reader:
        return reader.rows("trades", symbol, start, end, tz=tz, as_of=as_of, columns=columns)


def quotes(
    symbol: str | None,
    start: Instant,
    end: Instant | None = None,
    *,
    tz: str = "UTC",
    as_of: str | int | None = None,
    columns: Sequence[str] | None = None,
    endpoints: Endpoints | None = None,
    prefix: str = "",
) -> pa.Table:
    """Best bid/ask updates of `symbol` in `[start, end)`, as an Arrow table."""
    with Reader(endpoints, prefix=prefix) as reader:
        return reader.rows("quotes", symbol, start, end, tz=tz, as_of=as_of, columns=columns)


def ohlcv(
    symbol: str,
    start: Instant,
    end: Instant | None = None,
    *,
    interval: str = "5m",
    tz: str = "UTC",
    as_of: str | int | None = None,
    endpoints: Endpoints | None = None,
    prefix: str = "",
) -> pa.Table:
    """OHLCV bars (open, high, low, close, volume, VWAP, trade count) of `symbol`'s trades."""
    with Reader(endpoints, prefix=prefix) as reader:
        return reader.ohlcv(symbol, start, end, interval=interval, tz=tz, as_of=as_of)


def snapshots(dataset: str, *, endpoints: Endpoints | None = None, prefix: str = "") -> pa.Table:
    """The snapshots of `dataset`'s table (trades, quotes, reference_data), oldest first."""
    with Reader(endpoints, prefix=prefix) as reader:
        return reader.snapshots(dataset)
