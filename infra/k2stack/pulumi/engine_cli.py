"""`k2-stack pulumi ...`: K2's Pulumi program on the real engine (Automation API, inline).

`up` prints the stack's `K2_*` outputs as KEY=VALUE lines on stdout (like `k2-stack env`), so
`eval "$(k2-stack pulumi up --stack ci)"` points tests at the stack; progress goes to stderr.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from k2.errors import K2Error
from k2stack.local.context import default_cache_dir
from k2stack.pulumi import automation
from k2stack.pulumi.cli_install import ensure_pulumi_cli
from k2stack.pulumi.stacks import REPO_ROOT, up_committed

pulumi_app = typer.Typer(
    no_args_is_help=True, help="K2's Pulumi stack on the real Pulumi engine (file backend)."
)
console = Console(stderr=True)

StackOption = Annotated[str, typer.Option("--stack", help="Stack name, e.g. dev or ci-<id>.")]
ConfigDir = Annotated[
    Path, typer.Option("--config-dir", help="Where the committed Pulumi.<stack>.yaml files are.")
]


def _fail(e: K2Error) -> typer.Exit:
    console.print(f"[bold red]error:[/] {e}")
    return typer.Exit(1)


@pulumi_app.command()
def install() -> None:
    """Build (once) and show the pinned Pulumi CLI."""
    try:
        bin_dir = ensure_pulumi_cli(default_cache_dir())
    except K2Error as e:
        raise _fail(e) from e
    console.print(f"Pulumi CLI in {bin_dir}")


@pulumi_app.command()
def up(
    stack: StackOption,
    run_id: Annotated[
        str | None, typer.Option("--id", help="Run id of an ephemeral stack (default: random).")
    ] = None,
    config_dir: ConfigDir = REPO_ROOT,
    settings: Annotated[
        list[str] | None,
        typer.Option("--set", help="k2:KEY=VALUE over the committed config (repeatable)."),
    ] = None,
) -> None:
    """Create or update a stack; print its K2_* outputs as KEY=VALUE lines."""
    try:
        overrides = dict(_setting(item) for item in settings or ())
        name, outputs = up_committed(stack, run_id, overrides, config_dir)
    except K2Error as e:
        raise _fail(e) from e
    for key, value in outputs.items():
        if key.startswith("K2_"):
            sys.stdout.write(f"{key}={value}\n")
    console.print(f"[green]stack {name} up[/]; remove it: k2-stack pulumi destroy --stack {name}")


def _setting(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key.startswith("k2:"):
        raise typer.BadParameter(f"{item!r}: expected k2:KEY=VALUE", param_hint="--set")
    return key, value


@pulumi_app.command()
def destroy(stack: StackOption) -> None:
    """Delete every resource of the stack, then the stack itself."""
    try:
        existed = automation.destroy(stack)
    except K2Error as e:
        raise _fail(e) from e
    console.print(f"stack {stack} destroyed" if existed else f"no stack {stack}: nothing to do")


@pulumi_app.command()
def outputs(stack: StackOption) -> None:
    """Print the stack's outputs as KEY=VALUE lines (includes secrets)."""
    try:
        values = automation.outputs(stack)
    except K2Error as e:
        raise _fail(e) from e
    for key, value in values.items():
        sys.stdout.write(f"{key}={value}\n")
