"""The demo's closing report: reconciliation per table, figures, and a researcher's answer."""

from __future__ import annotations

import httpx
from rich.table import Table

from k2.demo.ledger import RunOutcome


def reconciliation_table(outcomes: list[RunOutcome]) -> Table:
    """This run's records per table: published, found once, missing, duplicated; and the
    table's consumed/written/dead-lettered counts over the run."""
    table = Table(title="Reconciliation of this run: published → Kafka → Iceberg, by identity")
    columns = (
        "table",
        "published",
        "in Iceberg",
        "missing",
        "duplicated",
        "consumed Δ",
        "written Δ",
        "dead-lettered Δ",
        "ok",
    )
    for column in columns:
        table.add_column(column, justify="left" if column in {"table", "ok"} else "right")
    for o in outcomes:
        table.add_row(
            o.name,
            f"{o.published:,}",
            f"{o.found:,}",
            f"{o.missing:,}" if not o.missing else f"[red]{o.missing:,}[/]",
            f"{o.duplicated:,}" if not o.duplicated else f"[red]{o.duplicated:,}[/]",
            f"{o.delta('consumed'):,}",
            f"{o.delta('written'):,}",
            f"{o.delta('dead_lettered'):,}",
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
