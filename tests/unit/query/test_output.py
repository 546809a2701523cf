"""Query output: a table a reader can read; CSV and Parquet keep every value exactly."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from rich.console import Console

from k2.query.errors import UnknownColumnError
from k2.query.output import (
    DEFAULT_COLUMNS,
    OutputFormat,
    decimal_text,
    parse_columns,
    print_table,
    select_columns,
    write,
)

SYDNEY = ZoneInfo("Australia/Sydney")
PRICE = pa.decimal128(18, 8)


def _trades(rows: int = 3) -> pa.Table:
    """Trades shaped like the table's rows: every column of the contract."""
    start = datetime(2014, 3, 9, 23, 0, 6, 717_000, tzinfo=UTC)  # 10:00:06.717 in Sydney
    return pa.table(
        {
            "trade_id": [f"XASX-BHP-20140310-{i}" for i in range(rows)],
            "exchange": ["XASX"] * rows,
            "symbol": ["BHP"] * rows,
            "instrument_id": ["AU000000BHP4"] * rows,
            "venue_sequence": pa.array(range(rows), pa.int64()),
            "event_time": pa.array([start] * rows, pa.timestamp("us", "UTC")),
            "event_time_nanos": pa.array([None] * rows, pa.int64()),
            "receive_time": pa.array([start] * rows, pa.timestamp("us", "UTC")),
            "price": pa.array([Decimal("36.78"), Decimal("36.7"), Decimal("100")][:rows], PRICE),
            "size": pa.array([Decimal(358), Decimal("0.5"), Decimal(1)][:rows], PRICE),
            "currency": ["AUD"] * rows,
            "side": ["UNKNOWN"] * rows,
            "conditions": pa.array([["qualifier:0", "XT"]] * rows, pa.list_(pa.string())),
        }
    )


def _printed(table: pa.Table, width: int = 80) -> list[str]:
    out = io.StringIO()
    print_table(table, SYDNEY, Console(file=out, width=width))
    return out.getvalue().splitlines()


def test_decimals_lose_only_their_padding_zeros() -> None:
    assert decimal_text(Decimal("36.78000000")) == "36.78"
    assert decimal_text(Decimal("100.00000000")) == "100"  # never 1E+2
    assert decimal_text(Decimal("0E-8")) == "0"
    assert decimal_text(Decimal("0.00000001")) == "0.00000001"


def test_the_table_shows_a_readers_columns_in_the_zone_asked_for() -> None:
    trades = select_columns(_trades(), DEFAULT_COLUMNS["trades"])

    lines = _printed(trades)

    header = next(line for line in lines if "event_time" in line)
    assert header.split() == [
        "event_time",
        "(Australia/Sydney)",
        "symbol",
        "price",
        "size",
        "side",
        "conditions",
        "trade_id",
    ]
    first = next(line for line in lines if "XASX-BHP-20140310-0" in line)
    # Sydney wall time (AEDT, UTC+11), milliseconds as recorded; plain decimals.
    assert first.split() == [
        "2014-03-10",
        "10:00:06.717",
        "BHP",
        "36.78",
        "358",
        "UNKNOWN",
        "qualifier:0,XT",
        "XASX-BHP-20140310-0",
    ]
    assert any(line.split()[3:5] == ["100", "1"] for line in lines if "-2" in line)
    assert lines[-1] == "3 row(s)"


def test_no_cell_is_wrapped_or_cut_even_on_a_narrow_terminal() -> None:
    lines = _printed(_trades(), width=40)  # every column: far wider than 40

    rows = [line for line in lines if "XASX-BHP-20140310-" in line]
    assert len(rows) == 3  # one line per row: nothing wrapped
    assert all("…" not in line for line in lines)
    assert "AU000000BHP4" in rows[0] and "2014-03-10 10:00:06.717" in rows[0]


def test_columns_are_chosen_by_name_and_unknown_ones_are_named() -> None:
    assert parse_columns(" price, size ,") == ["price", "size"]
    assert parse_columns(None) is None
    assert select_columns(_trades(), ["size", "price"]).column_names == ["size", "price"]
    assert select_columns(_trades(), ["all"]).column_names == _trades().column_names

    with pytest.raises(UnknownColumnError, match="no column 'prize'; columns: trade_id"):
        select_columns(_trades(), ["price", "prize"])


def test_csv_and_parquet_keep_every_column_exactly(tmp_path: Path) -> None:
    trades = _trades()

    write(trades, OutputFormat.PARQUET, tmp_path / "t.parquet")
    write(trades, OutputFormat.CSV, tmp_path / "t.csv")

    assert pq.read_table(tmp_path / "t.parquet").equals(trades)
    back = pacsv.read_csv(
        tmp_path / "t.csv",
        convert_options=pacsv.ConvertOptions(column_types={"price": pa.string()}),
    )
    assert back.column_names == trades.column_names
    # The stored scale, not the reader's: CSV is for machines.
    assert back["price"].to_pylist() == ["36.78000000", "36.70000000", "100.00000000"]
    assert back["conditions"].to_pylist() == ["qualifier:0|XT"] * 3
