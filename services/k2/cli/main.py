"""`k2`: the platform's command line. Each command group lives in its own module."""

from __future__ import annotations

import typer

from k2.cli import bootstrap, contracts, dlq, generate, ingest, maintain, query, replay

app = typer.Typer(no_args_is_help=True, help="K2: market data from Kafka into Apache Iceberg.")
app.add_typer(contracts.app, name="contracts")
app.add_typer(ingest.app, name="ingest")
app.add_typer(dlq.app, name="dlq")
app.add_typer(replay.app, name="replay")
app.add_typer(query.app, name="query")
app.command("bootstrap")(bootstrap.bootstrap)
app.command("generate")(generate.generate)
app.command("maintain")(maintain.maintain)
