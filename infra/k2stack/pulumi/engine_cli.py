"""`k2-stack pulumi ...`: K2's Pulumi program on the real engine (Automation API, inline).

`up` prints the stack's `K2_*` outputs as KEY=VALUE lines on stdout (like `k2-stack env`), so
`eval "$(k2-stack pulumi up --stack ci)"` points tests at the stack; progress goes to stderr.
"""

from __future__ import annotations

import random
import re
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from k2.errors import K2Error, StackError
from k2stack.local.context import default_cache_dir
from k2stack.local.ports import is_free
from k2stack.pulumi import automation
from k2stack.pulumi.cli_install import ensure_pulumi_cli
from k2stack.pulumi.config import validate

pulumi_app = typer.Typer(
    no_args_is_help=True, help="K2's Pulumi stack on the real Pulumi engine (file backend)."
)
console = Console(stderr=True)

# The committed Pulumi.<stack>.yaml files sit at the repository root.
REPO_ROOT = Path(__file__).resolve().parents[3]
_RUN_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,20}")
# Whole thousands keep each stack's ports recognisable (base port + N000); the config allows
# offsets up to 30000 and the topology's ports stay below 65536 with any of them.
_PORT_OFFSETS = list(range(1000, 30001, 1000))

StackOption = Annotated[str, typer.Option("--stack", help="Stack name, e.g. dev or ci-<id>.")]
ConfigDir = Annotated[
    Path, typer.Option("--config-dir", help="Where the committed Pulumi.<stack>.yaml files are.")
]


def _fail(e: K2Error) -> typer.Exit:
    console.print(f"[bold red]error:[/] {e}")
    return typer.Exit(1)


def stack_name_for(stack: str, run_id: str | None, ephemeral: bool) -> str:
    """`ci` + id -> `ci-<id>`; an ephemeral stack without an id gets a fresh one."""
    if run_id is None and ephemeral and "-" not in stack:
        run_id = uuid.uuid4().hex[:8]
    if run_id is None:
        return stack
    if not _RUN_ID.fullmatch(run_id):
        raise typer.BadParameter("lowercase letters, digits and -, at most 21", param_hint="--id")
    return f"{stack}-{run_id}"


def free_port_offset(stack: str, config: Mapping[str, str], secrets: Mapping[str, str]) -> int:
    """A port offset at which every host port the stack would publish is free now."""
    from k2stack.docker.stack_spec import stack_spec
    from k2stack.pulumi.program import k2_version

    for offset in random.sample(_PORT_OFFSETS, k=len(_PORT_OFFSETS)):
        values = {**config, **secrets, "k2:portOffset": str(offset)}
        spec = stack_spec(validate(values, frozenset(secrets), stack), worker_version=k2_version())
        if all(is_free(p.host_port) for c in spec.containers for p in c.ports):
            return offset
    raise StackError("no port offset leaves every port of the stack free on this host")


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
) -> None:
    """Create or update a stack; print its K2_* outputs as KEY=VALUE lines."""
    try:
        base_config = automation.read_config_file(
            automation.committed_config_file(stack, config_dir)
        )
        ephemeral = base_config.get("k2:ephemeral") == "true"
        name = stack_name_for(stack, run_id, ephemeral)
        config_file = automation.committed_config_file(name, config_dir)
        # Ephemeral stacks take their name as Docker name prefix (unique per run).
        extra = {} if "k2:namePrefix" in base_config else {"k2:namePrefix": name}
        secrets = automation.generated_secrets(automation.required_secret_keys(base_config))
        initial = {}
        # Several ephemeral stacks share a host: each publishes on its own block of ports.
        publishes = base_config.get("k2:publishPorts") != "false"
        if ephemeral and publishes and "k2:portOffset" not in base_config:
            initial["k2:portOffset"] = str(
                free_port_offset(name, {**base_config, **extra}, secrets)
            )
        from k2stack.pulumi.program import declare

        outputs = automation.up(
            name,
            config_file,
            program=declare,
            extra_config=extra,
            secrets=secrets,
            initial_config=initial,
        )
    except K2Error as e:
        raise _fail(e) from e
    for key, value in outputs.items():
        if key.startswith("K2_"):
            sys.stdout.write(f"{key}={value}\n")
    console.print(f"[green]stack {name} up[/]; remove it: k2-stack pulumi destroy --stack {name}")


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
