"""`k2 ingest`: run an ingest worker (Kafka → Iceberg) for one table."""

from __future__ import annotations

import logging
import os
from typing import Annotated

import typer

from k2.discovery import find_endpoints
from k2.ingest.config import IngestSettings
from k2.ingest.errors import DlqBudgetExceededError
from k2.ingest.logs import configure_json_logging

app = typer.Typer(no_args_is_help=True, help="Ingest workers: Kafka → Iceberg, exactly once.")
TABLES = ("trades", "quotes", "reference_data")
# polars' thread pool, sized when polars loads. A worker's polars work (the decode proof,
# dedup, sequence counters) comes in small pieces on a loop that already shares the machine
# with its own commit threads and librdkafka's; one thread measured 5.47-5.63 CPU-s per
# million records against 5.94-6.00 with the default pool (one per core), and ~7 % more
# records/s (`k2.bench` throughput runs, 2M trades, 2 cores).
POLARS_THREADS = "1"


def limit_polars_threads() -> None:
    """Size polars' pool for a worker (a user's own POLARS_MAX_THREADS wins); call before
    anything imports polars, which this module does not."""
    os.environ.setdefault("POLARS_MAX_THREADS", POLARS_THREADS)


@app.command("run")
def run(
    table: Annotated[str, typer.Option(help="Dataset: trades, quotes or reference_data.")],
    prefix: Annotated[str | None, typer.Option(help="Catalogue prefix (tests).")] = None,
    metrics_port: Annotated[int | None, typer.Option(help="Serve /metrics here.")] = None,
    max_seconds: Annotated[float | None, typer.Option(help="Stop after this long.")] = None,
) -> None:
    """Consume the dataset's topic and commit it to its Iceberg table until SIGTERM."""
    if table not in TABLES:
        raise typer.BadParameter(f"--table must be one of {', '.join(TABLES)}")
    configure_json_logging()
    limit_polars_threads()
    from k2.ingest.app import build_worker  # loads polars: after the limit

    worker = build_worker(
        table,
        find_endpoints(export=True),
        IngestSettings(),
        prefix=prefix,
    )
    if metrics_port is not None:
        worker.metrics.serve(metrics_port)
    worker.install_signal_handlers()
    try:
        worker.run(max_seconds=max_seconds)
    except DlqBudgetExceededError as e:
        # Into the JSON log as well; the root group prints it and exits 3 (k2.cli.failures).
        logging.getLogger("k2.ingest").critical(str(e))
        raise
