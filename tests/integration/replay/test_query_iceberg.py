"""`k2 query` against a real Iceberg table: pushed-down filters, time travel, OHLCV."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow.parquet as pq
import pytest
from pyiceberg.catalog import Catalog
from typer.testing import CliRunner

from k2.cli.main import app
from k2.contracts.catalogue import Catalogue
from k2.query.errors import InvalidTimeRangeError, UnknownSnapshotError
from k2.query.ohlcv import Interval, bars, bars_table
from k2.query.scan import row_filter
from k2.query.service import query_ohlcv, query_rows
from k2.query.time_range import TimeRange
from k2.settings import Endpoints

from .tables import append, asx_trades

pytestmark = pytest.mark.integration
SYDNEY = ZoneInfo("Australia/Sydney")


def test_query_time_travel_and_ohlcv(
    stack: Endpoints, iceberg: Catalog, prefixed: Catalogue, asx_data_dir: Path, tmp_path: Path
) -> None:
    table = iceberg.load_table(prefixed.dataset("trades").table_identifier)
    bhp = asx_trades(asx_data_dir, "BHP")
    day1 = [t for t in bhp if t["trade_id"].split("-")[2] == "20140310"]
    day2 = [t for t in bhp if t["trade_id"].split("-")[2] == "20140311"]
    dvn = asx_trades(asx_data_dir, "DVN")
    before_first = datetime.now(UTC)
    first = append(table, day1 + dvn)
    second = append(table, day2)

    both_days = TimeRange.parse("2014-03-10", "2014-03-12", SYDNEY)
    now = query_rows(iceberg, prefixed, "trades", both_days, symbol="BHP", tz=SYDNEY)
    assert now.num_rows == len(day1) + len(day2)
    assert now["trade_id"].to_pylist() == [t["trade_id"] for t in day1 + day2]  # time order
    then = query_rows(iceberg, prefixed, "trades", both_days, symbol="BHP", as_of=str(first))
    assert then.num_rows == len(day1)
    by_time = query_rows(
        iceberg,
        prefixed,
        "trades",
        both_days,
        symbol="BHP",
        as_of=datetime.fromtimestamp(
            table.snapshot_by_id(first).timestamp_ms / 1000,
            UTC,  # type: ignore[union-attr]
        ).isoformat(),
    )
    assert by_time.num_rows == len(day1)
    assert second != first

    # Half-open window in Sydney time: exactly day 1's trades.
    day1_window = TimeRange.parse("2014-03-10", None, SYDNEY)
    assert query_rows(iceberg, prefixed, "trades", day1_window, symbol="BHP").num_rows == len(day1)

    # Partition pruning: the symbol/day filter plans fewer files than the whole table.
    table.refresh()
    planned = list(table.scan(row_filter=row_filter("BHP", day1_window)).plan_files())
    assert 0 < len(planned) < len(list(table.scan().plan_files()))

    # OHLCV from the table equals OHLCV computed from the source records.
    got = query_ohlcv(
        iceberg, prefixed, day1_window, symbol="BHP", interval=Interval.FIVE_MINUTES, tz=SYDNEY
    )
    expected = bars_table(
        bars(
            then.select(["event_time", "venue_sequence", "price", "size"]),
            Interval.FIVE_MINUTES,
            SYDNEY,
        ),
        SYDNEY,
    )
    assert got.equals(expected)
    assert sum(got["trades"].to_pylist()) == len(day1)

    # Bad input: clear errors.
    with pytest.raises(UnknownSnapshotError, match="has no snapshot 123"):
        query_rows(iceberg, prefixed, "trades", both_days, symbol="BHP", as_of="123")
    with pytest.raises(UnknownSnapshotError, match="had no snapshot at"):
        query_rows(
            iceberg,
            prefixed,
            "trades",
            both_days,
            symbol="BHP",
            as_of=before_first.replace(year=2000).isoformat(),
        )
    with pytest.raises(InvalidTimeRangeError):
        TimeRange.parse("2014-03-12", "2014-03-10", SYDNEY)

    # The CLI: Parquet output keeps exact decimals; bad ranges exit 2 (usage) with a message.
    prefix = prefixed.namespace.removesuffix("market")
    out = tmp_path / "bars.parquet"
    result = CliRunner().invoke(
        app,
        [
            "query",
            "ohlcv",
            "--symbol",
            "BHP",
            "--interval",
            "5m",
            "--start",
            "2014-03-10",
            "--tz",
            "Australia/Sydney",
            "--format",
            "parquet",
            "--output",
            str(out),
            "--prefix",
            prefix,
        ],
        env=stack.as_env(),
    )
    assert result.exit_code == 0, result.output
    assert pq.read_table(out).equals(expected)
    bad = CliRunner().invoke(
        app,
        [
            "query",
            "trades",
            "--symbol",
            "BHP",
            "--start",
            "2014-03-12",
            "--end",
            "2014-03-10",
            "--prefix",
            prefix,
        ],
        env=stack.as_env(),
    )
    assert bad.exit_code == 2 and "must be before" in bad.output  # a usage error
    csv = CliRunner().invoke(
        app,
        [
            "query",
            "trades",
            "--symbol",
            "DVN",
            "--start",
            "2014-03-10",
            "--tz",
            "Australia/Sydney",
            "--format",
            "csv",
            "--prefix",
            prefix,
        ],
        env=stack.as_env(),
    )
    assert csv.exit_code == 0, csv.output
    assert csv.output.count("XASX-DVN-20140310-") == sum(
        1 for t in dvn if t["trade_id"].split("-")[2] == "20140310"
    )
