"""`k2 maintain` (placeholder until its issue lands)."""

import typer


def maintain() -> None:
    """Not built yet."""
    raise typer.Exit(2)
