"""`k2 bootstrap`: topics, subjects, namespace and tables from the catalogue, idempotently."""

from __future__ import annotations

from pathlib import Path

import typer

from k2.errors import K2Error


def bootstrap(
    prefix: str = typer.Option("", "--prefix", help="Prefix topics/subjects/namespace (tests)."),
    replication: int | None = typer.Option(None, "--replication", help="Override replication."),
    catalogue: Path | None = typer.Option(None, "--catalogue", help="Catalogue file."),
) -> None:
    """Create or align everything the catalogue declares; running it twice changes nothing."""
    # Imported here so `k2 --help` stays fast and needs no Kafka/pyiceberg import.
    from k2.bootstrap import bootstrap_stack
    from k2.contracts.catalogue import load_catalogue
    from k2.settings import Endpoints

    try:
        loaded = load_catalogue(catalogue)
        if prefix:
            loaded = loaded.with_prefix(prefix)
        if replication is not None:
            loaded = loaded.with_replication(replication)
        endpoints = Endpoints()  # read from K2_* variables
        report = bootstrap_stack(loaded, endpoints)
    except K2Error as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(1) from e
    for action in report.actions:
        detail = f" ({action.detail})" if action.detail else ""
        typer.echo(f"{action.kind} {action.name}: {action.change.value}{detail}")
