"""`k2 query trades|quotes|ohlcv`: read K2's Iceberg tables (filters pushed down, time travel)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from k2.catalog import load_catalog
from k2.contracts.catalogue import Catalogue, load_catalogue
from k2.errors import K2Error
from k2.query.ohlcv import Interval
from k2.query.output import OutputFormat, write
from k2.query.service import query_ohlcv, query_rows
from k2.query.time_range import TimeRange, zone
from k2.settings import Endpoints

app = typer.Typer(no_args_is_help=True, help="Query trades, quotes and OHLCV bars.")
console = Console(stderr=True)

Symbol = Annotated[str, typer.Option(help="Ticker symbol, e.g. BHP.")]
Start = Annotated[str, typer.Option(help="Window start (ISO-8601; no offset = --tz wall time).")]
End = Annotated[str | None, typer.Option(help="Window end, exclusive (default: start + 1 day).")]
AsOf = Annotated[
    str | None, typer.Option("--as-of", help="Snapshot id, or an ISO time: read the table then.")
]
Tz = Annotated[str, typer.Option("--tz", help="Zone of offset-less times and of bar buckets.")]
Format = Annotated[OutputFormat, typer.Option("--format", help="table, csv or parquet.")]
Output = Annotated[Path | None, typer.Option(help="Write to this file instead of stdout.")]
Prefix = Annotated[str, typer.Option(help="Namespace prefix (tests).")]


def _catalogue(prefix: str) -> Catalogue:
    catalogue = load_catalogue()
    return catalogue.with_prefix(prefix) if prefix else catalogue


def _rows(  # noqa: PLR0917 - plain pass-through of one command's options
    dataset: str,
    symbol: str,
    start: str,
    end: str | None,
    as_of: str | None,
    tz: str,
    fmt: OutputFormat,
    output: Path | None,
    prefix: str,
) -> None:
    try:
        zone_info = zone(tz)
        window = TimeRange.parse(start, end, zone_info)
        catalog = load_catalog(Endpoints())
        result = query_rows(
            catalog, _catalogue(prefix), dataset, window, symbol=symbol, as_of=as_of, tz=zone_info
        )
        write(result, fmt, output)
    except K2Error as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(1) from e


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
        prefix: Prefix = "",
    ) -> None:
        _rows(dataset, symbol, start, end, as_of, tz, fmt, output, prefix)

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
    prefix: Prefix = "",
) -> None:
    """OHLCV bars from trades: exact decimals, VWAP to 8 places (half-even), no empty bars."""
    try:
        zone_info = zone(tz)
        window = TimeRange.parse(start, end, zone_info)
        catalog = load_catalog(Endpoints())
        result = query_ohlcv(
            catalog,
            _catalogue(prefix),
            window,
            symbol=symbol,
            interval=interval,
            tz=zone_info,
            as_of=as_of,
        )
        write(result, fmt, output, limit=500)
    except K2Error as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(1) from e
