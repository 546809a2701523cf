"""The `k2` command line: one typer app, one module per command group."""
