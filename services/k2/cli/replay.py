"""`k2 replay asx`: publish the ASX sample data set to Kafka through the registry serializers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table

from k2.contracts.catalogue import load_catalogue
from k2.discovery import find_endpoints
from k2.replay.asx import AsxSource, Dataset, default_data_dir
from k2.replay.asx_replay import ReplaySummary, publish, validate
from k2.replay.bad_rows import BadRowsError
from k2.replay.pacing import Pacer, parse_speed
from k2.replay.producer import RecordPublisher

app = typer.Typer(no_args_is_help=True, help="Replay recorded market data into Kafka.")
console = Console(stderr=True)
ALL_DATASETS = ",".join(d.value for d in Dataset)


def parse_datasets(text: str) -> list[Dataset]:
    """`trades,quotes,reference_data` (any subset, any order) to datasets."""
    try:
        chosen = [Dataset(part.strip()) for part in text.split(",") if part.strip()]
    except ValueError as e:
        raise typer.BadParameter(f"{e}; choose from {ALL_DATASETS}") from e
    if not chosen:
        raise typer.BadParameter(f"choose at least one of {ALL_DATASETS}")
    return chosen


def _print_summary(summary: ReplaySummary, *, published: bool) -> None:
    table = Table(title="ASX replay" if published else "ASX files (dry run)")
    for column in ("dataset", "file", "symbol", "rows", "bad rows"):
        table.add_column(column, justify="right" if "rows" in column else "left")
    for item in summary.files:
        table.add_row(
            item.dataset, str(item.path), item.symbol, f"{item.rows:,}", str(item.bad_rows)
        )
    if summary.reference_data:
        table.add_row(
            "reference_data",
            "reference-data/company_info.csv",
            "*",
            str(summary.reference_data),
            "0",
        )
    console.print(table)
    for dataset in Dataset:
        if published and summary.published[dataset]:
            console.print(f"{dataset}: {summary.published[dataset]:,} published")
    if summary.bad.count:
        console.print(f"[red]{summary.bad.count} malformed row(s):[/red]")
        for row in summary.bad.rows[: summary.bad.keep]:
            console.print(f"  {row}", markup=False)


def _summary_json(summary: ReplaySummary) -> dict[str, object]:
    return {
        "tables": {d.value: summary.rows(d) for d in Dataset},
        "published": {d.value: summary.published[d] for d in Dataset},
        "files": [
            {
                "dataset": f.dataset.value,
                "path": str(f.path),
                "symbol": f.symbol,
                "rows": f.rows,
                "bad_rows": f.bad_rows,
            }
            for f in summary.files
        ],
        "by_symbol_day": [
            {"dataset": d.value, "symbol": s, "local_date": day.isoformat(), "rows": n}
            for (d, s, day), n in sorted(summary.by_symbol_day.items())
        ],
        "bad_rows": [
            {"file": str(r.file), "line": r.line, "reason": r.reason} for r in summary.bad.rows
        ],
    }


@app.command("asx")
def asx(
    *,
    data_dir: Annotated[
        Path | None,
        typer.Option(help="ASX data directory (default: $K2_DATA_DIR or ../shared/data/asx)."),
    ] = None,
    speed: Annotated[str, typer.Option(help="'max', or N for N times market time.")] = "max",
    prefix: Annotated[str, typer.Option(help="Prefix of topics/subjects (tests).")] = "",
    dataset: Annotated[
        str, typer.Option(help=f"Comma-separated subset of {ALL_DATASETS}.")
    ] = ALL_DATASETS,
    allow_bad_rows: Annotated[
        bool, typer.Option(help="Publish good rows even when some rows are malformed.")
    ] = False,
    dry_run: Annotated[bool, typer.Option(help="Parse and count only; publish nothing.")] = False,
    summary_json: Annotated[
        Path | None, typer.Option(help="Also write the counts (per file, table, symbol/day) here.")
    ] = None,
) -> None:
    """Replay ASX trades, quotes and reference data (validated first: bad rows publish nothing)."""
    datasets = parse_datasets(dataset)
    try:
        source = AsxSource(data_dir or default_data_dir())
        pacer = Pacer(parse_speed(speed))
        if dry_run:
            summary = validate(source, datasets)
        else:
            summary = _publish(source, datasets, pacer, prefix, allow_bad_rows)
    except BadRowsError as e:
        for row in e.report.rows[: e.report.keep]:
            console.print(f"  {row}", markup=False, soft_wrap=True)
        console.print(f"[red]error:[/red] {e.report.count} malformed row(s): nothing was published")
        console.print("(use --allow-bad-rows to publish the good rows and report the bad ones)")
        raise typer.Exit(1) from e
    _print_summary(summary, published=not dry_run)
    if summary_json is not None:
        summary_json.write_text(json.dumps(_summary_json(summary), indent=2))


def _publish(
    source: AsxSource, datasets: list[Dataset], pacer: Pacer, prefix: str, allow_bad_rows: bool
) -> ReplaySummary:
    endpoints = find_endpoints(export=True)
    catalogue = load_catalogue()
    if prefix:
        catalogue = catalogue.with_prefix(prefix)
    total = validate(source, datasets)
    if total.bad.count and not allow_bad_rows:
        raise BadRowsError(total.bad)
    with (
        RecordPublisher(
            endpoints.kafka_bootstrap_servers, endpoints.schema_registry_url, catalogue
        ) as publisher,
        Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as bar,
    ):
        task = bar.add_task("publishing", total=total.total)
        summary = publish(
            source,
            datasets,
            publisher,
            pacer=pacer,
            allow_bad_rows=allow_bad_rows,
            progress=lambda n: bar.advance(task, n),
            validated=total,
        )
        bar.update(task, description="waiting for acks")
        publisher.flush()
    return summary
