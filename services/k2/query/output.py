"""Write query results: a rich table on the terminal, CSV or Parquet (decimals kept exact)."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table

from k2.query.errors import QueryError


class OutputFormat(StrEnum):
    """`--format` choices."""

    TABLE = "table"
    CSV = "csv"
    PARQUET = "parquet"


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def write(result: pa.Table, fmt: OutputFormat, output: Path | None, *, limit: int = 50) -> None:
    """Write `result`; table format prints at most `limit` rows (CSV/Parquet write them all)."""
    if fmt is OutputFormat.PARQUET:
        if output is None:
            raise QueryError("--format parquet needs --output FILE")
        pq.write_table(result, output, compression="zstd")
        return
    if fmt is OutputFormat.CSV:
        # Lists (trade conditions) have no CSV form: join them with '|'.
        for index, field in enumerate(result.schema):
            if pa.types.is_list(field.type) or pa.types.is_large_list(field.type):
                joined = pa.array(
                    [None if v is None else "|".join(v) for v in result[field.name].to_pylist()],
                    pa.string(),
                )
                result = result.set_column(index, field.name, joined)
        if output is None:
            sink = pa.BufferOutputStream()
            pacsv.write_csv(result, sink)
            sys.stdout.write(sink.getvalue().to_pybytes().decode())
        else:
            pacsv.write_csv(result, output)
        return
    table = Table(show_lines=False)
    for name in result.column_names:
        table.add_column(name)
    for row in result.slice(0, limit).to_pylist():
        table.add_row(*(_cell(v) for v in row.values()))
    console = Console(file=None if output is None else output.open("w"), width=200)
    console.print(table)
    if result.num_rows > limit:
        console.print(f"... {result.num_rows - limit:,} more rows (use --format csv or parquet)")
    console.print(f"{result.num_rows:,} row(s)")
