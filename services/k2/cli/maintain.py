"""`k2 maintain`: compact small files, expire old snapshots, remove orphan files (safe during
ingest), with pyiceberg in process or Spark (`--engine spark [--master URL]`)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer
from rich.console import Console

from k2.contracts.catalogue import load_catalogue
from k2.discovery import find_endpoints
from k2.engines import Engine
from k2.engines.maintain import MaintainOptions, maintain_tables
from k2.maintain import CompactionPolicy

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
    orphan_older_than_hours: Annotated[
        float,
        typer.Option(help="Remove unreferenced files older than this (guards in-flight commits)."),
    ] = 72.0,
    no_orphans: Annotated[bool, typer.Option("--no-orphans", help="Keep orphan files.")] = False,
    engine: Annotated[
        Engine, typer.Option(help="pyiceberg (in process) or spark (Iceberg's procedures).")
    ] = Engine.PYICEBERG,
    master: Annotated[
        str | None, typer.Option(help="Spark master URL (--engine spark; default local[*]).")
    ] = None,
    prefix: Annotated[str, typer.Option(help="Namespace prefix (tests).")] = "",
) -> None:
    """Compact each table's small files, expire snapshots past the retention window, then
    remove orphan files older than the guard."""
    catalogue = load_catalogue()
    if prefix:
        catalogue = catalogue.with_prefix(prefix)
    options = MaintainOptions(
        policy=CompactionPolicy(small_file_bytes=small_file_mb * 1024 * 1024, min_files=min_files),
        expire_older_than=None if no_expire else timedelta(hours=expire_older_than_hours),
        retain_last=retain_last,
        orphan_older_than=None if no_orphans else timedelta(hours=orphan_older_than_hours),
    )
    maintain_tables(
        find_endpoints(export=True),
        [catalogue.dataset(name).table_identifier for name in dataset or list(catalogue.datasets)],
        options,
        engine=engine,
        master=master,
        say=console.print,
    )
