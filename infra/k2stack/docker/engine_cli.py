"""`k2-stack docker engine ...`: the Docker engine K2 uses, and K2's base image."""

from __future__ import annotations

import typer
from rich.console import Console

from k2.errors import K2Error
from k2stack.docker.base_image import ensure_base_image
from k2stack.docker.engine import DockerEngine, Engine

engine_app = typer.Typer(
    no_args_is_help=True,
    help="The Docker engine K2 uses: one that answers, or K2's own dockerd.",
)
# soft_wrap: an error or a restored rule stays on one line, whatever the terminal's width.
console = Console(stderr=True, soft_wrap=True)


def _fail(e: K2Error) -> typer.Exit:
    console.print(f"[bold red]error:[/] {e}", highlight=False)
    return typer.Exit(1)


def _describe(engine: Engine) -> str:
    owner = ", started by K2" if engine.started_by_k2 else ""
    return f"{engine.url} ({engine.source}{owner})"


@engine_app.command()
def up() -> None:
    """Use the engine that answers (DOCKER_HOST, default socket, K2's), else start K2's own."""
    try:
        engine = DockerEngine().ensure()
    except K2Error as e:
        raise _fail(e) from e
    console.print(f"[green]engine up[/]: {_describe(engine)}", highlight=False)


@engine_app.command()
def down() -> None:
    """Stop K2's own engine if K2 started it, and restore what it changed on the host."""
    try:
        report = DockerEngine().stop()
    except K2Error as e:
        raise _fail(e) from e
    console.print(report.detail, highlight=False)
    for line in report.restored:
        console.print(f"  restored: {line}", highlight=False)
    for line in report.failed:
        console.print(f"  [red]not restored:[/] {line}", highlight=False)
    if report.failed:
        raise typer.Exit(1)


@engine_app.command()
def status() -> None:
    """Which engine answers, whether K2 started it, its pid, version and running containers."""
    try:
        state = DockerEngine().status()
    except K2Error as e:
        raise _fail(e) from e
    typer.echo(f"engine: {_describe(state.engine)}")
    typer.echo(f"pid: {state.pid if state.pid is not None else '-'}")
    typer.echo(f"version: {state.version}")
    typer.echo(f"running containers: {state.running_containers}")


@engine_app.command("base-image")
def base_image() -> None:
    """Print the image to build FROM (`BASE`), building K2's own from Debian if needed."""
    try:
        ref = ensure_base_image(DockerEngine().client())
    except K2Error as e:
        raise _fail(e) from e
    typer.echo(ref)
