"""`k2 maintain`: compact small files per partition and expire old snapshots (safe during ingest)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer
from rich.console import Console

from k2.catalog import load_catalog
from k2.contracts.catalogue import load_catalogue
from k2.errors import K2Error
from k2.maintain import CompactionPolicy, compact, expire_snapshots
from k2.query.scan import load_table
from k2.settings import CatalogPrincipal, Endpoints

console = Console(stderr=True)


def maintain(
    *,
    dataset: Annotated[
        list[str] | None, typer.Option(help="Dataset(s) to maintain (default: all).")
    ] = None,
    min_files: Annotated[
        int, typer.Option(help="Compact partitions with this many small files.")
    ] = 4,
    small_file_mb: Annotated[int, typer.Option(help="Files below this size are small.")] = 32,
    expire_older_than_hours: Annotated[
        float, typer.Option(help="Expire snapshots older than this (0 = all but the newest).")
    ] = 24.0,
    retain_last: Annotated[int, typer.Option(help="Always keep this many newest snapshots.")] = 10,
    no_expire: Annotated[bool, typer.Option("--no-expire", help="Compact only.")] = False,
    prefix: Annotated[str, typer.Option(help="Namespace prefix (tests).")] = "",
) -> None:
    """Compact each table's small files, then expire snapshots past the retention window."""
    try:
        catalogue = load_catalogue()
        if prefix:
            catalogue = catalogue.with_prefix(prefix)
        catalog = load_catalog(Endpoints(), CatalogPrincipal.MAINTAIN)
        policy = CompactionPolicy(small_file_bytes=small_file_mb * 1024 * 1024, min_files=min_files)
        for name in dataset or list(catalogue.datasets):
            table = load_table(catalog, catalogue.dataset(name).table_identifier)
            report = compact(table, policy)
            committed = [p for p in report.partitions if p.committed]
            console.print(
                f"{report.table}: {len(committed)} partition(s) compacted,"
                f" {report.rewritten_files} small files rewritten"
                f" into {sum(p.files_after for p in committed)}"
            )
            if not no_expire:
                expired = expire_snapshots(
                    table,
                    older_than=timedelta(hours=expire_older_than_hours),
                    retain_last=retain_last,
                )
                console.print(f"{report.table}: {expired} snapshot(s) expired")
    except K2Error as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(1) from e
