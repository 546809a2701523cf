"""`k2 bootstrap`: topics, subjects, namespace and tables from the catalogue, idempotently."""

from __future__ import annotations

from pathlib import Path

import typer


def bootstrap(
    prefix: str = typer.Option("", "--prefix", help="Prefix topics/subjects/namespace (tests)."),
    replication: int | None = typer.Option(None, "--replication", help="Override replication."),
    catalogue: Path | None = typer.Option(None, "--catalogue", help="Catalogue file."),
) -> None:
    """Create or align everything the catalogue declares; running it twice changes nothing."""
    # Imported here so `k2 --help` stays fast and needs no Kafka/pyiceberg import.
    from k2.bootstrap import bootstrap_stack
    from k2.contracts.catalogue import load_catalogue
    from k2.discovery import find_endpoints

    loaded = load_catalogue(catalogue)
    if prefix:
        loaded = loaded.with_prefix(prefix)
    if replication is not None:
        loaded = loaded.with_replication(replication)
    report = bootstrap_stack(loaded, find_endpoints(export=True))
    for action in report.actions:
        detail = f" ({action.detail})" if action.detail else ""
        typer.echo(f"{action.kind} {action.name}: {action.change.value}{detail}")
