"""`k2 generate` (placeholder until its issue lands)."""

import typer


def generate() -> None:
    """Not built yet."""
    raise typer.Exit(2)
