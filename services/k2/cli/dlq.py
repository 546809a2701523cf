"""`k2 dlq inspect` and `k2 dlq replay`: look at dead letters, send them back after a fix."""

from __future__ import annotations

import json
from collections import Counter
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from k2.discovery import find_endpoints
from k2.ingest.app import catalogue_for
from k2.ingest.dlq_admin import Letter, LetterFilter, read_letters, replay_letters

app = typer.Typer(no_args_is_help=True, help="Dead-letter queues: inspect and replay.")
console = Console(stderr=True)

TableOption = Annotated[str, typer.Option(help="Dataset: trades, quotes or reference_data.")]
PrefixOption = Annotated[str | None, typer.Option(help="Catalogue prefix (tests).")]
ReasonOption = Annotated[
    list[str] | None, typer.Option("--reason", help="Only these reasons (repeatable).")
]


def _letters(table: str, prefix: str | None, selected: LetterFilter) -> list[Letter]:
    dataset = catalogue_for(prefix).dataset(table)
    servers = find_endpoints(export=True).kafka_bootstrap_servers
    return list(read_letters(servers, dataset.dlq_topic, selected))


@app.command("inspect")
def inspect(
    *,
    table: TableOption,
    prefix: PrefixOption = None,
    reason: ReasonOption = None,
    error_class: Annotated[str | None, typer.Option(help="Only this error class.")] = None,
    source_partition: Annotated[int | None, typer.Option(help="Only this partition.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines on stdout.")] = False,
    limit: Annotated[int, typer.Option(help="Show at most this many (0: all).")] = 50,
) -> None:
    """List dead letters with their reason, error class and source position."""
    selected = LetterFilter(frozenset(reason) if reason else None, error_class, source_partition)
    letters = _letters(table, prefix, selected)
    shown = letters if limit == 0 else letters[:limit]
    if as_json:
        for letter in shown:
            typer.echo(json.dumps(letter.summary()))
        return
    view = Table(title=f"{len(letters)} dead letter(s)")
    for column in ("source", "offset", "reason", "error class", "detail"):
        view.add_column(column)
    for letter in shown:
        view.add_row(
            f"{letter.source_topic}:{letter.source_partition}",
            str(letter.source_offset),
            letter.reason,
            letter.error_class,
            letter.detail[:80],
        )
    Console().print(view)
    for name, count in Counter(letter.reason for letter in letters).most_common():
        console.print(f"{name}: {count}")


@app.command("replay")
def replay(
    *,
    table: TableOption,
    prefix: PrefixOption = None,
    reason: ReasonOption = None,
    dry_run: Annotated[
        bool, typer.Option(help="Count what would be replayed; send nothing.")
    ] = False,
) -> None:
    """Send dead letters (raw bytes, original headers) back to their source topic."""
    letters = _letters(table, prefix, LetterFilter(frozenset(reason) if reason else None))
    by_reason = Counter(letter.reason for letter in letters)
    if dry_run:
        typer.echo(
            json.dumps({"dry_run": True, "would_replay": len(letters), "by_reason": by_reason})
        )
        return
    sent = replay_letters(find_endpoints(export=True).kafka_bootstrap_servers, letters)
    typer.echo(json.dumps({"dry_run": False, "replayed": sent, "by_reason": by_reason}))
