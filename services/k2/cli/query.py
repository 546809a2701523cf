"""`k2 query trades|quotes|ohlcv`: read K2's Iceberg tables (filters pushed down, time travel).

A thin shell over `k2.query.Reader` (the library notebooks use): options in, a table, CSV or
Parquet out. Errors are raised, and reported once by the root group (`k2.cli.failures`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import pyarrow as pa
import typer

from k2.query.api import Reader
from k2.query.errors import NoRowsError
from k2.query.ohlcv import Interval
from k2.query.output import (
    ALL_COLUMNS,
    DEFAULT_COLUMNS,
    OutputFormat,
    parse_columns,
    select_columns,
    write,
)
from k2.query.time_range import TimeRange, zone

app = typer.Typer(no_args_is_help=True, help="Query trades, quotes and OHLCV bars.")

Symbol = Annotated[str, typer.Option(help="Ticker symbol, e.g. BHP.")]
Start = Annotated[str, typer.Option(help="Window start (ISO-8601; no offset = --tz wall time).")]
End = Annotated[str | None, typer.Option(help="Window end, exclusive (default: start + 1 day).")]
AsOf = Annotated[
    str | None, typer.Option("--as-of", help="Snapshot id, or an ISO time: read the table then.")
]
Tz = Annotated[
    str, typer.Option("--tz", help="Zone of offset-less times, of shown times and of bar buckets.")
]
Format = Annotated[OutputFormat, typer.Option("--format", help="table, csv or parquet.")]
Output = Annotated[Path | None, typer.Option(help="Write to this file instead of stdout.")]
Prefix = Annotated[str, typer.Option(help="Namespace prefix (tests).")]
Columns = Annotated[
    str | None,
    typer.Option(
        "--columns",
        help=f"Comma-separated columns, or '{ALL_COLUMNS}'. Default: a reader's choice for the "
        "table format, every column for csv/parquet.",
    ),
]


def _shown_columns(dataset: str, fmt: OutputFormat, columns: str | None) -> list[str] | None:
    chosen = parse_columns(columns)
    if chosen is None and fmt is OutputFormat.TABLE:
        return list(DEFAULT_COLUMNS[dataset])
    return chosen


def _require_rows(  # noqa: PLR0917 - the query's own facts, for the message
    result: pa.Table, reader: Reader, dataset: str, symbol: str, window: TimeRange, tz: ZoneInfo
) -> None:
    """An empty answer for a symbol is almost always a typo: say which symbols there are."""
    if result.num_rows:
        return
    start, end = (instant.astimezone(tz).isoformat() for instant in (window.start, window.end))
    known = reader.symbols(dataset, window.start, window.end)
    if not known:
        raise NoRowsError(f"no {dataset} at all from {start} to {end}")
    listed = ", ".join(known[:20]) + (f" and {len(known) - 20} more" if len(known) > 20 else "")
    raise NoRowsError(
        f"no {dataset} of {symbol!r} from {start} to {end}; symbols with {dataset} then: {listed}"
    )


def _rows_command(dataset: str, summary: str) -> None:
    def command(
        *,
        symbol: Symbol,
        start: Start,
        end: End = None,
        as_of: AsOf = None,
        tz: Tz = "UTC",
        fmt: Format = OutputFormat.TABLE,
        output: Output = None,
        columns: Columns = None,
        prefix: Prefix = "",
    ) -> None:
        zone_info = zone(tz)
        window = TimeRange.parse(start, end, zone_info)
        with Reader(prefix=prefix) as reader:
            result = reader.rows(dataset, symbol, window.start, window.end, tz=tz, as_of=as_of)
            _require_rows(result, reader, dataset, symbol, window, zone_info)
        shown = select_columns(result, _shown_columns(dataset, fmt, columns))
        write(shown, fmt, output, tz=zone_info)

    command.__doc__ = summary
    app.command(dataset)(command)


_rows_command("trades", "Trades of one symbol in [start, end).")
_rows_command("quotes", "Best bid/ask updates of one symbol in [start, end).")


@app.command("ohlcv")
def ohlcv(
    *,
    symbol: Symbol,
    start: Start,
    interval: Annotated[Interval, typer.Option(help="Bar width.")] = Interval.FIVE_MINUTES,
    end: End = None,
    as_of: AsOf = None,
    tz: Tz = "UTC",
    fmt: Format = OutputFormat.TABLE,
    output: Output = None,
    columns: Columns = None,
    chart: Annotated[
        Path | None,
        typer.Option(help="Also draw the bars (candles and volume, --tz on the axis) to this PNG."),
    ] = None,
    prefix: Prefix = "",
) -> None:
    """OHLCV bars from trades: exact decimals, VWAP to 8 places (half-even), no empty bars."""
    zone_info = zone(tz)
    window = TimeRange.parse(start, end, zone_info)
    with Reader(prefix=prefix) as reader:
        result = reader.ohlcv(
            symbol, window.start, window.end, interval=interval.value, tz=tz, as_of=as_of
        )
        _require_rows(result, reader, "trades", symbol, window, zone_info)
    shown = select_columns(result, _shown_columns("ohlcv", fmt, columns))
    write(shown, fmt, output, tz=zone_info, limit=500)
    if chart is not None:
        from k2.query.chart import render_chart

        title = f"{symbol} {interval.value} bars, {window.start.astimezone(zone_info):%d %B %Y}"
        render_chart(result, chart, title=title, interval=interval, tz=zone_info)
        typer.echo(f"chart: {chart}", err=True)
