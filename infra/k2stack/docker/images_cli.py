"""`k2-stack docker images ...`: build and list K2's own images.

The Docker modules are imported inside the commands: this module is mounted into the
`k2-stack` CLI, which also runs inside K2's service images, where the `docker` package is not
installed.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from k2.errors import K2Error

images_app = typer.Typer(
    no_args_is_help=True,
    help="K2's own images: built here from the local backend's artifacts, never pulled.",
)
# soft_wrap: a build log line or an error stays on one line, whatever the terminal's width.
console = Console(stderr=True, soft_wrap=True)
_MB = 1_000_000


def _fail(e: K2Error) -> typer.Exit:
    console.print(f"[bold red]error:[/] {e}", highlight=False)
    return typer.Exit(1)


def _log(line: str) -> None:
    console.print(line, highlight=False, markup=False)


@images_app.command()
def build(
    services: Annotated[
        list[str] | None,
        typer.Argument(
            help="Images to build (service names, runtime, jvm, ingest-worker); none: all.",
            show_default=False,
        ),
    ] = None,
    base: Annotated[
        str | None,
        typer.Option(help="The Debian base image (default: K2's own, built if missing)."),
    ] = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Rebuild every step, even if nothing changed.")
    ] = False,
) -> None:
    """Build K2's images (each only when its context changed), parents first."""
    from k2stack.docker.base_image import ensure_base_image
    from k2stack.docker.engine import DockerEngine
    from k2stack.docker.images import build_images

    try:
        client = DockerEngine().client()
        infos = build_images(
            client, base or ensure_base_image(client), services or None, no_cache=no_cache, log=_log
        )
    except K2Error as e:
        raise _fail(e) from e
    table = Table("image", "size", "", "seconds")
    for info in infos.values():
        state = "[green]built[/]" if info.built else "reused"
        table.add_row(info.name, f"{info.size / _MB:.0f} MB", state, f"{info.seconds:.1f}")
    Console().print(table)


@images_app.command("ls")
def list_images() -> None:
    """K2's images in the engine: name, size, context hash, created."""
    from k2stack.docker.engine import DockerEngine
    from k2stack.docker.images import image_summaries

    try:
        summaries = image_summaries(DockerEngine().client())
    except K2Error as e:
        raise _fail(e) from e
    table = Table("image", "size", "context hash", "created")
    for summary in summaries:
        table.add_row(
            summary.name,
            f"{summary.size / _MB:.0f} MB",
            (summary.context_hash or "-")[:12],
            summary.created[:19],
        )
    Console().print(table)
