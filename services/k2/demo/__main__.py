"""`task demo`: stack up, bootstrap, ingest workers, replay ASX data, wait, reconcile, answer.

Exits 1 when any table does not reconcile what this run published (`k2.demo.ledger`: every
record it published is in its table exactly once, by identity, and every record consumed
meanwhile was written or dead-lettered), so it passes on a stack that other producers use.
Leaves the stack running.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

from k2.bootstrap import bootstrap_stack
from k2.catalog import load_catalog
from k2.children import WorkerProcess
from k2.contracts.catalogue import Catalogue, load_catalogue
from k2.demo.ledger import RunLedger, RunOutcome, reconcile
from k2.demo.progress import end_offsets, table_counts, topic_progress
from k2.demo.report import freshness_quantiles, reconciliation_table
from k2.demo.workers import start_worker, stop_workers
from k2.errors import K2Error
from k2.generate import GeneratorConfig, SyntheticMarket
from k2.query.chart import render_chart
from k2.query.ohlcv import Interval
from k2.query.output import DEFAULT_COLUMNS, print_table, select_columns
from k2.query.service import query_ohlcv
from k2.query.time_range import TimeRange
from k2.replay.asx import AsxSource, Dataset, default_data_dir
from k2.replay.asx_replay import publish, validate
from k2.replay.producer import RecordPublisher
from k2.settings import Endpoints
from k2stack.local.context import default_state_dir
from k2stack.local.stack import LocalStack

# Wide enough for the reconciliation table when the output is a log file, not a terminal.
console = Console(width=None if sys.stdout.isatty() else 150)
TABLES = ("reference_data", "trades", "quotes")
SYDNEY = ZoneInfo("Australia/Sydney")
WAIT_LIMIT_S = 900.0
# Beside the bench's results, outside git (/results/ is ignored).
CHART = Path("results") / "charts" / "BHP-2014-03-10-5m.png"


def _progress() -> Progress:
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


def _replay_asx(
    data_dir: Path, endpoints: Endpoints, catalogue: Catalogue
) -> tuple[Counter[str], RunLedger]:
    """Publish the ASX files; returns the source rows per table and the run's ledger."""
    source = AsxSource(data_dir)
    datasets = list(Dataset)
    validated = validate(source, datasets)
    with (
        RecordPublisher(
            endpoints.kafka_bootstrap_servers, endpoints.schema_registry_url, catalogue
        ) as publisher,
        _progress() as bar,
    ):
        ledger = RunLedger(publisher)
        task = bar.add_task("replaying ASX 10-14 March 2014", total=validated.total)
        summary = publish(
            source,
            datasets,
            ledger,
            progress=lambda n: bar.advance(task, n),
            validated=validated,
        )
        bar.update(task, description="waiting for Kafka's acknowledgements")
        publisher.flush()
    if summary.bad.count:
        for row in summary.bad.rows[: summary.bad.keep]:
            console.print(f"  malformed: {row}", markup=False)
    return Counter({d.value: summary.rows(d) for d in Dataset}), ledger


def _replay_synthetic(
    records: int, endpoints: Endpoints, catalogue: Catalogue
) -> tuple[Counter[str], RunLedger]:
    counts: Counter[str] = Counter()
    market = SyntheticMarket(GeneratorConfig())
    with (
        RecordPublisher(
            endpoints.kafka_bootstrap_servers, endpoints.schema_registry_url, catalogue
        ) as publisher,
        _progress() as bar,
    ):
        ledger = RunLedger(publisher)
        task = bar.add_task("publishing synthetic trades and quotes", total=records)
        for dataset, record in market.take(records):
            ledger.publish(dataset, record)
            counts[dataset] += 1
            bar.advance(task)
        publisher.flush()
    counts["reference_data"] += 0
    return counts, ledger


def _counts(endpoints: Endpoints, catalogue: Catalogue) -> dict[str, Counter[str]]:
    """Each table's cumulative `k2.count.*` (consumed, written, dead-lettered) right now."""
    with load_catalog(endpoints) as catalog:
        return {
            name: table_counts(
                catalog.load_table(catalogue.dataset(name).table_identifier),
                catalogue.dataset(name).topic.name,
            )
            for name in TABLES
        }


def _wait_until_committed(
    endpoints: Endpoints, catalogue: Catalogue, workers: list[WorkerProcess]
) -> float:
    """Block until every table's recorded offsets reach its topic's end; returns seconds."""
    began = time.monotonic()
    ends = {
        name: end_offsets(endpoints.kafka_bootstrap_servers, catalogue.dataset(name).topic.name)
        for name in TABLES
    }
    # The catalog client holds an HTTP session: closed on the way out.
    with load_catalog(endpoints) as catalog, _progress() as bar:
        tasks = {
            name: bar.add_task(f"committed to Iceberg: {name}", total=sum(ends[name].values()))
            for name in TABLES
        }
        while True:
            for worker in workers:
                worker.check_alive()
            caught_up = True
            for name in TABLES:
                dataset = catalogue.dataset(name)
                table = catalog.load_table(dataset.table_identifier)
                progress = topic_progress(table, dataset.topic.name, ends[name])
                bar.update(tasks[name], completed=progress.done)
                caught_up = caught_up and progress.caught_up
            if caught_up:
                return time.monotonic() - began
            if time.monotonic() - began > WAIT_LIMIT_S:
                raise K2Error(f"ingest did not catch up within {WAIT_LIMIT_S:.0f}s")
            time.sleep(0.5)


def _outcomes(
    endpoints: Endpoints,
    catalogue: Catalogue,
    ledger: RunLedger,
    before: dict[str, Counter[str]],
) -> list[RunOutcome]:
    with load_catalog(endpoints) as catalog:
        return [
            reconcile(
                catalog.load_table(catalogue.dataset(name).table_identifier),
                catalogue.dataset(name).topic.name,
                name,
                ledger,
                before[name],
            )
            for name in TABLES
        ]


def _print_results(
    *,
    outcomes: list[RunOutcome],
    published: Counter[str],
    ingest_seconds: float,
    began: float,
    freshness: dict[str, dict[str, float | None]],
    source_dir: Path,
    endpoints: Endpoints,
) -> None:
    console.print("[bold]6/6[/] results")
    console.print(reconciliation_table(outcomes))
    total = sum(published.values())
    console.print(
        f"replayed {total:,} records; all committed to Iceberg {ingest_seconds:.1f}s after the "
        f"replay began ({total / ingest_seconds:,.0f} records/s end to end, co-located on this "
        f"machine); whole demo {time.monotonic() - began:.1f}s"
    )
    for name, q in freshness.items():
        # No series (a table with no rows) comes back as NaN: nothing to report.
        if q["p50"] is not None and not math.isnan(q["p50"]):
            console.print(
                f"freshness {name}: p50 {q['p50']:.2f}s, p99 {q['p99']:.2f}s "
                "(Kafka append → visible in Iceberg, from Prometheus)"
            )

    if (source_dir / "trades").is_dir():
        day = date(2014, 3, 10)
        with load_catalog(endpoints) as catalog:
            bars = query_ohlcv(
                catalog,
                load_catalogue(),
                TimeRange.day(day, SYDNEY),
                symbol="BHP",
                interval=Interval.FIVE_MINUTES,
                tz=SYDNEY,
            )
        console.print("[bold]BHP 5-minute OHLCV bars, 10 March 2014[/] (Sydney time)")
        print_table(
            select_columns(bars, DEFAULT_COLUMNS["ohlcv"]),
            SYDNEY,
            console,
            limit=14,
            rest="k2 query ohlcv --symbol BHP --start 2014-03-10 --tz Australia/Sydney",
        )
        chart = render_chart(
            bars,
            CHART,
            title="BHP 5-minute bars, 10 March 2014",
            interval=Interval.FIVE_MINUTES,
            tz=SYDNEY,
        )
        console.print(f"chart of those bars: {chart.resolve()}")

    console.rule("look around")
    console.print(
        "  (every k2 command finds this stack by itself; ./task stack:status shows it)\n"
        "  .venv/bin/k2 query ohlcv --symbol RIO --interval 1h --start 2014-03-11 --tz Australia/Sydney\n"
        "  .venv/bin/k2 query trades --symbol BHP --start 2014-03-10T10:00 --end 2014-03-10T10:05"
        " --tz Australia/Sydney\n"
        "  .venv/bin/k2 query ohlcv --symbol BHP --start 2014-03-10 --tz Australia/Sydney"
        " --chart bhp.png\n"
        f"  Prometheus: {endpoints.prometheus_url}   stop: ./task stack:down   "
        "wipe: ./task stack:down -- --purge"
    )


def main(
    data_dir: Annotated[
        Path | None, typer.Option(help="ASX data (default $K2_DATA_DIR or ../shared/data/asx).")
    ] = None,
    synthetic: Annotated[
        int, typer.Option(help="Records to generate when the ASX data is absent.")
    ] = 200_000,
) -> None:
    """Run the whole platform on real market data and show what it landed."""
    began = time.monotonic()
    console.rule("[bold]K2 demo[/]: market data from Kafka into Apache Iceberg, exactly once")
    state_dir = default_state_dir()
    stack = LocalStack(state_dir)
    try:
        console.print(f"[bold]1/6[/] local stack at {state_dir} (real services on 127.0.0.1)")
        env = stack.up()
        os.environ.update(env)
        endpoints = Endpoints()
        catalogue = load_catalogue()

        console.print("[bold]2/6[/] bootstrap: topics, schema subjects, Iceberg tables")
        report = bootstrap_stack(catalogue, endpoints)  # its clients are closed after
        console.print(f"    {len(report.changed)} change(s), {len(report.actions)} item(s) checked")

        console.print("[bold]3/6[/] ingest workers: one consumer group per table")
        ctx = stack.context()
        workers = [start_worker(name, env, ctx) for name in TABLES]
        # Before this run publishes anything: the counts it reconciles against.
        before = _counts(endpoints, catalogue)

        source_dir = data_dir or default_data_dir()
        replay_began = time.monotonic()
        if (source_dir / "trades").is_dir():
            console.print(f"[bold]4/6[/] replaying real ASX data from {source_dir}")
            source, ledger = _replay_asx(source_dir, endpoints, catalogue)
        else:
            console.print(
                f"[bold yellow]4/6 ASX data not found at {source_dir}: replaying {synthetic:,} "
                "synthetic records from `k2 generate` instead[/]"
            )
            source, ledger = _replay_synthetic(synthetic, endpoints, catalogue)
        published = Counter(source)

        console.print("[bold]5/6[/] waiting until every record is committed to Iceberg")
        _wait_until_committed(endpoints, catalogue, workers)
        ingest_seconds = time.monotonic() - replay_began
        time.sleep(6)  # one Prometheus scrape after the last commit
        freshness = {name: freshness_quantiles(endpoints.prometheus_url, name) for name in TABLES}
        stop_workers(workers, ctx)

        outcomes = _outcomes(endpoints, catalogue, ledger, before)
    except K2Error as e:
        console.print(f"[bold red]demo failed:[/] {e}")
        raise typer.Exit(1) from e

    _print_results(
        outcomes=outcomes,
        published=published,
        ingest_seconds=ingest_seconds,
        began=began,
        freshness=freshness,
        source_dir=source_dir,
        endpoints=endpoints,
    )
    if not all(o.reconciled for o in outcomes):
        console.print(
            "[bold red]this run's records do not reconcile: see the missing/duplicated "
            "columns and the counts above[/]"
        )
        raise typer.Exit(1)
    console.print(
        "[bold green]every record this run published is in Iceberg exactly once: "
        "nothing lost, nothing duplicated[/]"
    )


if __name__ == "__main__":
    sys.exit(typer.run(main))  # type: ignore[func-returns-value]
