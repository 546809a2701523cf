"""`k2 bootstrap` (placeholder until its issue lands)."""

import typer


def bootstrap() -> None:
    """Not built yet."""
    raise typer.Exit(2)
