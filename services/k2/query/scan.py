"""Filtered Iceberg scans: symbol and event-time filters are pushed into pyiceberg.

The tables are partitioned by day(event_time) and bucket(symbol), so these predicates let
pyiceberg skip whole partitions via manifest pruning, then files via column statistics.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.expressions import And, BooleanExpression, EqualTo, GreaterThanOrEqual, LessThan
from pyiceberg.table import Table

from k2.query.errors import UnknownTableError
from k2.query.time_range import TimeRange


def load_table(catalog: Catalog, identifier: tuple[str, str]) -> Table:
    """The table, or a clear error naming it."""
    try:
        return catalog.load_table(identifier)
    except NoSuchTableError as e:
        raise UnknownTableError(f"no table {'.'.join(identifier)} in the catalog") from e


def _micros(instant: datetime) -> int:
    # Integer microseconds: exact, and what pyiceberg compares timestamptz literals as.
    delta = instant - datetime(1970, 1, 1, tzinfo=instant.tzinfo)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def row_filter(symbol: str | None, window: TimeRange) -> BooleanExpression:
    """`symbol = ? AND event_time >= start AND event_time < end`."""
    expression: BooleanExpression = And(
        GreaterThanOrEqual(term="event_time", value=_micros(window.start)),
        LessThan(term="event_time", value=_micros(window.end)),
    )
    if symbol is not None:
        expression = And(EqualTo(term="symbol", value=symbol), expression)
    return expression


def scan(
    table: Table,
    window: TimeRange,
    *,
    symbol: str | None = None,
    snapshot_id: int | None = None,
    columns: Sequence[str] = ("*",),
) -> pa.Table:
    """Rows of `table` in the window (and symbol), as of `snapshot_id`, sorted by event time."""
    result = table.scan(
        row_filter=row_filter(symbol, window),
        selected_fields=tuple(columns),
        snapshot_id=snapshot_id,
    ).to_arrow()
    order = [("event_time", "ascending")]
    if "venue_sequence" in result.column_names:
        order.append(("venue_sequence", "ascending"))
    return result.sort_by(order) if result.num_rows else result
