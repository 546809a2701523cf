"""The demo's closing report: reconciliation per table, figures, and a researcher's answer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import httpx
import pyarrow as pa
from rich.console import Console
from rich.table import Table


@dataclass(frozen=True)
class TableOutcome:
    """What one table holds against what its source had."""

    name: str
    source_rows: int
    published: int
    in_topic: int
    consumed: int
    written_total: int
    dead_lettered: int
    table_rows: int

    @property
    def reconciled(self) -> bool:
        """Every source row is in the table exactly once, and every consumed record is
        accounted for (written or dead-lettered)."""
        return (
            self.table_rows == self.source_rows
            and self.consumed == self.in_topic
            and self.consumed == self.written_total + self.dead_lettered
        )


def reconciliation_table(outcomes: list[TableOutcome]) -> Table:
    table = Table(title="Reconciliation: source files → Kafka → Iceberg")
    for column in (
        "table",
        "source rows",
        "published now",
        "records in topic",
        "consumed",
        "written",
        "dead-lettered",
        "rows in Iceberg",
        "ok",
    ):
        table.add_column(column, justify="left" if column in {"table", "ok"} else "right")
    for o in outcomes:
        table.add_row(
            o.name,
            f"{o.source_rows:,}",
            f"{o.published:,}",
            f"{o.in_topic:,}",
            f"{o.consumed:,}",
            f"{o.written_total:,}",
            f"{o.dead_lettered:,}",
            f"{o.table_rows:,}",
            "[green]yes[/]" if o.reconciled else "[red]NO[/]",
        )
    return table


def freshness_quantiles(prometheus_url: str, table: str) -> dict[str, float | None]:
    """p50 and p99 of produce → visible in Iceberg, from the workers' histogram in Prometheus."""
    out: dict[str, float | None] = {}
    for label, q in (("p50", 0.5), ("p99", 0.99)):
        query = (
            f'histogram_quantile({q}, sum by (le) (k2_freshness_seconds_bucket{{table="{table}"}}))'
        )
        try:
            body = httpx.get(
                f"{prometheus_url}/api/v1/query", params={"query": query}, timeout=5
            ).json()
            result = body["data"]["result"]
            out[label] = float(result[0]["value"][1]) if result else None
        except (httpx.HTTPError, KeyError, ValueError):
            out[label] = None
    return out


def _cell(value: object) -> str:
    """Exact values, shown without the schema's padding zeros (36.66000000 -> 36.66)."""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M %Z")
    return str(value)


def print_bars(console: Console, title: str, bars: pa.Table, limit: int = 14) -> None:
    table = Table(title=title)
    columns = [c for c in bars.column_names]
    for column in columns:
        table.add_column(
            column, justify="left" if column in {"bucket_start", "symbol"} else "right"
        )
    for row in bars.slice(0, limit).to_pylist():
        table.add_row(*(_cell(row[c]) for c in columns))
    console.print(table)
    if bars.num_rows > limit:
        console.print(f"… {bars.num_rows - limit} more bars ({bars.num_rows} in all)")
