"""Write query results: a table for a reader, or CSV/Parquet that keep every value exactly.

The terminal table shows the columns a reader wants (`DEFAULT_COLUMNS`, or `--columns`), times
in the query's zone, decimals without the schema's padding zeros (36.78000000 -> 36.78) and
never wraps or truncates a cell. CSV and Parquet write every column (or exactly the chosen
ones) with the stored values: UTC times, decimals at their declared scale.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from rich import box
from rich.console import Console
from rich.table import Table

from k2.errors import UsageError
from k2.query.errors import UnknownColumnError

# What a reader looks at first; everything else is one `--columns` (or `--columns all`) away.
DEFAULT_COLUMNS: Final[dict[str, tuple[str, ...]]] = {
    "trades": ("event_time", "symbol", "price", "size", "side", "conditions", "trade_id"),
    "quotes": ("event_time", "symbol", "bid_price", "bid_size", "ask_price", "ask_size"),
    "ohlcv": ("bar_start_local", "open", "high", "low", "close", "volume", "vwap", "trades"),
}
ALL_COLUMNS: Final = "all"
TABLE_ROW_LIMIT: Final = 50


class OutputFormat(StrEnum):
    """`--format` choices."""

    TABLE = "table"
    CSV = "csv"
    PARQUET = "parquet"


def select_columns(result: pa.Table, columns: Sequence[str] | None) -> pa.Table:
    """`result` with only `columns`, in that order (None or ["all"]: every column)."""
    if columns is None or list(columns) == [ALL_COLUMNS]:
        return result
    unknown = [c for c in columns if c not in result.column_names]
    if unknown:
        raise UnknownColumnError(
            f"no column {', '.join(map(repr, unknown))}; "
            f"columns: {', '.join(result.column_names)} (or 'all')"
        )
    return result.select(list(columns))


def parse_columns(text: str | None) -> list[str] | None:
    """`--columns a,b,c` to a list (None when not given)."""
    if text is None:
        return None
    columns = [part.strip() for part in text.split(",") if part.strip()]
    return columns or None


def decimal_text(value: Decimal) -> str:
    """An exact decimal without padding zeros, never in exponent form (1E+2 -> 100)."""
    text = format(value.normalize(), "f")
    return "0" if text in {"-0", ""} else text


def _fraction_digits(values: list[object]) -> int:
    """0, 3 or 6: the fewest second-fraction digits that show every time in a column exactly
    (ASX times are on milliseconds), so a column has one width."""
    micros = [v.microsecond for v in values if isinstance(v, datetime)]
    if all(m == 0 for m in micros):
        return 0
    return 3 if all(m % 1000 == 0 for m in micros) else 6


def _time_text(value: datetime, digits: int, tz: ZoneInfo) -> str:
    text = value.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S.%f")
    return text[: len(text) - 6 + digits].removesuffix(".")


def _cell(value: object, digits: int, tz: ZoneInfo) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return decimal_text(value)
    if isinstance(value, datetime):
        return _time_text(value, digits, tz)
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def _is_number(data_type: pa.DataType) -> bool:
    return bool(pa.types.is_decimal(data_type) or pa.types.is_integer(data_type))


def render_table(result: pa.Table, tz: ZoneInfo, *, limit: int = TABLE_ROW_LIMIT) -> Table:
    """The first `limit` rows as a rich table: local times, plain decimals, no wrapping."""
    shown = result.slice(0, limit)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    columns = {name: shown[name].to_pylist() for name in shown.column_names}
    digits = {name: _fraction_digits(values) for name, values in columns.items()}
    for field in shown.schema:
        header = field.name
        if pa.types.is_timestamp(field.type) and field.type.tz is not None:
            header = f"{field.name} ({tz.key})"
        table.add_column(
            header,
            justify="right" if _is_number(field.type) else "left",
            no_wrap=True,
            overflow="ignore",
        )
    for index in range(shown.num_rows):
        table.add_row(*(_cell(columns[n][index], digits[n], tz) for n in shown.column_names))
    return table


def print_table(
    result: pa.Table,
    tz: ZoneInfo,
    console: Console,
    *,
    limit: int = TABLE_ROW_LIMIT,
    rest: str = "use --format csv or parquet",
) -> None:
    """Print `render_table` at its natural width (a narrow terminal scrolls, cells never wrap)."""
    table = render_table(result, tz, limit=limit)
    # Measured without the terminal's limit: rich would otherwise squeeze columns to fit.
    natural = console.measure(table, options=console.options.update_width(10_000)).maximum
    width = console.width
    console.width = max(width, natural)
    try:
        console.print(table, crop=False)
    finally:
        console.width = width  # the caller's console keeps its own width for what follows
    if result.num_rows > limit:
        console.print(f"... {result.num_rows - limit:,} more rows ({rest})")
    console.print(f"{result.num_rows:,} row(s)")


def _csv_ready(result: pa.Table) -> pa.Table:
    # Lists (trade conditions) have no CSV form: join them with '|'.
    for index, field in enumerate(result.schema):
        if pa.types.is_list(field.type) or pa.types.is_large_list(field.type):
            joined = pa.array(
                [None if v is None else "|".join(v) for v in result[field.name].to_pylist()],
                pa.string(),
            )
            result = result.set_column(index, field.name, joined)
    return result


def write(
    result: pa.Table,
    fmt: OutputFormat,
    output: Path | None,
    *,
    tz: ZoneInfo = ZoneInfo("UTC"),
    limit: int = TABLE_ROW_LIMIT,
) -> None:
    """Write `result`; the table format prints at most `limit` rows, CSV/Parquet all of them."""
    if fmt is OutputFormat.PARQUET:
        if output is None:
            raise UsageError("--format parquet needs --output FILE")
        pq.write_table(result, output, compression="zstd")
        return
    if fmt is OutputFormat.CSV:
        ready = _csv_ready(result)
        if output is None:
            sink = pa.BufferOutputStream()
            pacsv.write_csv(ready, sink)
            sys.stdout.write(sink.getvalue().to_pybytes().decode())
        else:
            pacsv.write_csv(ready, output)
        return
    if output is None:
        print_table(result, tz, Console(), limit=limit)
        return
    with output.open("w") as handle:
        print_table(result, tz, Console(file=handle, width=80), limit=limit)
