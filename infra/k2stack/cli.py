"""`k2-stack`: the local backend's commands (`task stack:*` calls these)."""

from __future__ import annotations

import subprocess
import sys
from enum import StrEnum
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from k2.errors import K2Error
from k2.ingest.logs import redact
from k2stack.local.context import default_state_dir
from k2stack.local.stack import LocalStack
from k2stack.topology import Profile, ServiceName

if TYPE_CHECKING:
    from k2stack.docker.backend import DockerStack

app = typer.Typer(no_args_is_help=True, help="K2's local stack: real services on 127.0.0.1.")
console = Console(stderr=True)

StateDir = Annotated[
    Path | None,
    typer.Option(
        "--state-dir",
        envvar="K2_STACK_DIR",
        help="The stack's state directory [default: the profile's, under /var/lib/k2 as root].",
        show_default=False,
    ),
]
ProfileOption = Annotated[
    Profile,
    typer.Option(
        "--profile",
        envvar="K2_STACK_PROFILE",
        help=(
            "single: one process per service. cluster: three Kafka brokers (RF 3, min ISR 2) "
            "and two registry instances, in a state directory of its own (local backend)."
        ),
    ),
]


class Backend(StrEnum):
    """Where the stack runs: native processes on 127.0.0.1, or K2's images on Docker."""

    LOCAL = "local"
    DOCKER = "docker"


BackendOption = Annotated[
    Backend,
    typer.Option(
        "--backend",
        envvar="K2_STACK_BACKEND",
        help="local: native processes; docker: K2's images on a Docker engine.",
    ),
]


def _docker(state_dir: Path | None) -> DockerStack:
    from k2stack.docker.backend import DockerStack, default_docker_state_dir

    return DockerStack(default_docker_state_dir(state_dir or default_state_dir()))


def _stack(state_dir: Path | None, profile: Profile = Profile.SINGLE) -> LocalStack:
    return LocalStack(state_dir or default_state_dir(profile), profile=profile)


def _fail(e: K2Error) -> typer.Exit:
    console.print(f"[bold red]error:[/] {e}")
    return typer.Exit(1)


def _local_only(backend: Backend, profile: Profile) -> None:
    """The Docker backend runs its own stack's shape: the profile is the local backend's."""
    if backend is Backend.DOCKER and profile is not Profile.SINGLE:
        raise _fail(
            K2Error(
                "--profile is the local backend's; on Docker the cluster is the Pulumi "
                "`cluster` stack (`k2-stack pulumi up --stack cluster`)"
            )
        )


@app.command()
def install(state_dir: StateDir = None, profile: ProfileOption = Profile.SINGLE) -> None:
    """Download everything the stack needs (idempotent)."""
    try:
        _stack(state_dir, profile).install()
    except K2Error as e:
        raise _fail(e) from e


@app.command()
def up(
    state_dir: StateDir = None,
    backend: BackendOption = Backend.LOCAL,
    profile: ProfileOption = Profile.SINGLE,
) -> None:
    """Start every service in dependency order, each after a real health probe."""
    _local_only(backend, profile)
    try:
        if backend is Backend.DOCKER:
            env = _docker(state_dir).up()
        else:
            env = _stack(state_dir, profile).up()
    except K2Error as e:
        raise _fail(e) from e
    hint = "" if profile is Profile.SINGLE else f" -- --profile {profile.value}"
    console.print(f"[green]stack up[/] ({backend.value}); endpoints: `task stack:env{hint}`")
    for key, value in env.items():
        if "SECRET" not in key and "DSN" not in key:
            console.print(f"  {key}={redact(value)}")  # registry URLs carry credentials


@app.command()
def down(
    state_dir: StateDir = None,
    purge: Annotated[bool, typer.Option(help="Also delete all data and logs.")] = False,
    backend: BackendOption = Backend.LOCAL,
    profile: ProfileOption = Profile.SINGLE,
) -> None:
    """Stop exactly the processes (or containers) the stack started."""
    _local_only(backend, profile)
    try:
        if backend is Backend.DOCKER:
            left = _docker(state_dir).down(purge=purge)
        else:
            stopped = _stack(state_dir, profile).down(purge=purge)
    except K2Error as e:
        raise _fail(e) from e
    if backend is Backend.DOCKER:
        if left:
            raise _fail(K2Error("left behind: " + ", ".join(left)))
        console.print("Docker stack removed" + (", volumes deleted" if purge else ""))
        return
    console.print(f"stopped {len(stopped)} service(s)" + (", data deleted" if purge else ""))


@app.command()
def status(
    state_dir: StateDir = None,
    backend: BackendOption = Backend.LOCAL,
    profile: ProfileOption = Profile.SINGLE,
) -> None:
    """Each service: pid, probe result, log file. Exits 1 unless all are healthy."""
    _local_only(backend, profile)
    if backend is Backend.DOCKER:
        _docker_status(state_dir)
        return
    try:
        rows = _stack(state_dir, profile).status()
    except K2Error as e:
        raise _fail(e) from e
    table = Table("service", "pid", "state", "log")
    for row in rows:
        state = "[green]healthy[/]" if row.healthy else f"[red]{row.detail}[/]"
        table.add_row(row.name, str(row.pid or "-"), state, str(row.log_file))
    Console().print(table)
    if not all(row.healthy for row in rows):
        raise typer.Exit(1)


def _docker_status(state_dir: Path | None) -> None:
    try:
        rows = _docker(state_dir).status()
    except K2Error as e:
        raise _fail(e) from e
    table = Table("container", "state", "health")
    for row in rows:
        table.add_row(row.name, row.state, row.health)
    Console().print(table)
    if not all(row.ok for row in rows):
        raise typer.Exit(1)


@app.command()
def env(
    state_dir: StateDir = None,
    backend: BackendOption = Backend.LOCAL,
    profile: ProfileOption = Profile.SINGLE,
) -> None:
    """Print the K2_* endpoints as KEY=VALUE lines (eval-able, includes secrets).

    The cluster profile's K2_KAFKA_BOOTSTRAP_SERVERS lists its three brokers and its
    K2_SCHEMA_REGISTRY_URL both registry instances, comma-separated.
    """
    _local_only(backend, profile)
    try:
        if backend is Backend.DOCKER:
            values = _docker(state_dir).env()
        else:
            local = _stack(state_dir, profile)
            values = {**local.env(), "K2_STACK_DIR": str(local.state_dir)}
    except K2Error as e:
        raise _fail(e) from e
    for key, value in values.items():
        sys.stdout.write(f"{key}={value}\n")


@app.command()
def logs(
    service: Annotated[
        str | None, typer.Argument(help="One service or process (`kafka-1`); default all.")
    ] = None,
    state_dir: StateDir = None,
    follow: Annotated[bool, typer.Option("--follow", "-f")] = False,
    lines: Annotated[int, typer.Option("--lines", "-n")] = 40,
    profile: ProfileOption = Profile.SINGLE,
) -> None:
    """Show the services' log files (they live under the state directory)."""
    try:
        stack = _stack(state_dir, profile)
        names = stack.process_names(service)
        paths = [stack.log_file(name) for name in names]
    except K2Error as e:
        console.print(f"[bold red]error:[/] {e}")
        raise typer.Exit(1) from e
    if not names:
        console.print(f"[bold red]error:[/] no service or process {service!r} in this stack")
        raise typer.Exit(1)
    files = [str(path) for path in paths if path.is_file()]
    if not files:
        console.print("no logs yet")
        return
    argv = ["tail", f"-n{lines}", *(["-F"] if follow else []), *files]
    raise typer.Exit(subprocess.call(argv))


@app.command(name="serve")
def serve_command(
    service: Annotated[ServiceName, typer.Argument(help="The service this container runs.")],
) -> None:
    """Run one service in K2's container image (its entry point; settings from K2_SERVE_*)."""
    from k2stack.serve import serve

    try:
        code = serve(service)
    except K2Error as e:
        raise _fail(e) from e
    raise typer.Exit(code)


@app.command(name="kafka-acls")
def kafka_acls_command() -> None:
    """Grant K2's principals their Kafka ACLs as the admin (K2_KAFKA_*); idempotent."""
    import os

    from k2.kafka import admin
    from k2stack.kafka_acls import grant_catalogue_acls

    try:
        count = grant_catalogue_acls(admin(os.environ["K2_KAFKA_BOOTSTRAP_SERVERS"]))
    except KeyError as e:
        raise _fail(K2Error("K2_KAFKA_BOOTSTRAP_SERVERS is not set")) from e
    except K2Error as e:
        raise _fail(e) from e
    console.print(f"{count} ACL bindings in place")


@app.command(name="probe")
def probe_command(
    service: Annotated[ServiceName, typer.Argument(help="The service this container runs.")],
) -> None:
    """Probe the service of this container once (its Docker health check); exit 1 unless healthy."""
    from k2stack.serve import probe

    problem = probe(service)
    if problem is not None:
        console.print(f"{service.value}: unhealthy: {problem}")
        raise typer.Exit(1)


def _mount_subcommands() -> None:
    """`k2-stack docker engine|images ...` and `k2-stack pulumi ...` (their modules are
    small; what they run is imported only when a command runs).

    K2's service images carry neither the Docker client nor Pulumi (they only `serve` and
    `probe`): there these commands are absent rather than an import error.
    """
    if find_spec("docker") is None or find_spec("pulumi") is None:
        return
    from k2stack.docker.engine_cli import engine_app
    from k2stack.docker.images_cli import images_app
    from k2stack.pulumi.engine_cli import pulumi_app

    docker_app = typer.Typer(no_args_is_help=True, help="K2 on Docker: the engine and K2's images.")
    docker_app.add_typer(engine_app, name="engine")
    docker_app.add_typer(images_app, name="images")
    app.add_typer(docker_app, name="docker")
    app.add_typer(pulumi_app, name="pulumi")


_mount_subcommands()

if __name__ == "__main__":
    app()
