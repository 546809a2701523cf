"""`k2 contracts lint|check|register`: validate the contracts and put them in the registry."""

from __future__ import annotations

from pathlib import Path

import typer

from k2.contracts.catalogue import load_catalogue
from k2.contracts.compat import check_versions
from k2.contracts.lint import lint_all
from k2.contracts.schemas import all_schemas

app = typer.Typer(no_args_is_help=True, help="Lint, check and register K2's contracts.")

_CATALOGUE = typer.Option(None, "--catalogue", help="Catalogue file (default contracts/).")


def _fail(lines: list[str]) -> None:
    # A list of findings, one per line: more than the one-line error the root group prints.
    for line in lines:
        typer.echo(line, err=True)
    raise typer.Exit(1)


@app.command()
def lint(catalogue: Path | None = _CATALOGUE) -> None:
    """Every schema parses and follows K2's rules; the catalogue matches the schemas."""
    loaded = load_catalogue(catalogue)
    grouped = all_schemas(loaded.source.parent if loaded.source else None)
    issues = [str(i) for versions in grouped.values() for i in lint_all(versions)]
    if issues:
        _fail(issues)
    count = sum(len(v) for v in grouped.values())
    typer.echo(f"ok: {count} schemas, {len(loaded.datasets)} datasets")


@app.command()
def check(catalogue: Path | None = _CATALOGUE) -> None:
    """Each schema version is compatible with every earlier one (checked locally)."""
    loaded = load_catalogue(catalogue)
    grouped = all_schemas(loaded.source.parent if loaded.source else None)
    problems = []
    for dataset in loaded.datasets.values():
        problems += check_versions(grouped[dataset.schema_name], dataset.compatibility)
    if problems:
        _fail(problems)
    typer.echo(f"ok: {len(loaded.datasets)} datasets compatible")


@app.command()
def register(
    catalogue: Path | None = _CATALOGUE,
    prefix: str = typer.Option("", "--prefix", help="Prefix topics/subjects (tests)."),
) -> None:
    """Register every version under its subject; nothing is registered unless all pass."""
    from k2.contracts.registry import register as do_register  # slow import
    from k2.discovery import find_endpoints
    from k2.serde.serializer import registry_client

    loaded = load_catalogue(catalogue)
    if prefix:
        loaded = loaded.with_prefix(prefix)
    endpoints = find_endpoints(export=True)
    with registry_client(endpoints.schema_registry_url) as client:
        results = do_register(loaded, client)
    for r in results:
        state = "registered" if r.created else "present"
        typer.echo(f"{r.subject} v{r.version}: {state} (id {r.schema_id})")
