"""PostgreSQL 15 from Debian: a private cluster under the stack's state directory."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import psycopg
from psycopg import sql

from k2.errors import StackError
from k2stack.local.context import StackContext
from k2stack.local.install import run_step
from k2stack.local.launcher import LaunchCommand, Launcher
from k2stack.topology import (
    CATALOG_DATABASE,
    LOOPBACK,
    POSTGRES_USER,
    REGISTRY_DATABASE,
    SERVICES,
    ServiceName,
)

PG_BIN = Path("/usr/lib/postgresql/15/bin")
DEBIAN_PACKAGE = "postgresql-15"
# initdb and postgres refuse to run as root: as root we run them as Debian's postgres user.
OS_USER = "postgres"


def _as_root() -> bool:
    return os.geteuid() == 0


class PostgresLauncher(Launcher):
    spec = SERVICES[ServiceName.POSTGRES]

    def install(self, ctx: StackContext) -> None:
        if (PG_BIN / "postgres").is_file():
            return
        if not _as_root():
            raise StackError(f"PostgreSQL 15 is missing: run `apt-get install {DEBIAN_PACKAGE}`")
        run_step(["apt-get", "update", "-q"], "updating Debian package lists")
        run_step(
            ["apt-get", "install", "-y", "-q", "--no-install-recommends", DEBIAN_PACKAGE],
            f"installing {DEBIAN_PACKAGE} from Debian",
        )

    def prepare(self, ctx: StackContext) -> None:
        home = ctx.service_dir(ServiceName.POSTGRES)
        data = ctx.data_dir(ServiceName.POSTGRES)
        home.mkdir(parents=True, exist_ok=True)
        if _as_root():
            _check_reachable(home)
            shutil.chown(home, OS_USER, OS_USER)
        if (data / "PG_VERSION").is_file():
            _allow_network_clients(ctx)
            return
        pwfile = home / "pwfile"
        pwfile.write_text(ctx.credentials.postgres_password + "\n")
        pwfile.chmod(0o600)
        if _as_root():
            shutil.chown(pwfile, OS_USER, OS_USER)
        try:
            _run_as_owner(
                [
                    str(PG_BIN / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    POSTGRES_USER,
                    f"--pwfile={pwfile}",
                    "--auth=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C",
                ],
                "initialising the PostgreSQL cluster",
            )
        finally:
            pwfile.unlink(missing_ok=True)
        _allow_network_clients(ctx)

    def command(self, ctx: StackContext) -> LaunchCommand:
        home = ctx.service_dir(ServiceName.POSTGRES)
        return LaunchCommand(
            argv=(
                str(PG_BIN / "postgres"),
                "-D",
                str(ctx.data_dir(ServiceName.POSTGRES)),
                "-c",
                f"listen_addresses={ctx.bind_host}",
                "-c",
                f"port={ctx.port(ServiceName.POSTGRES, 'sql')}",
                "-c",
                f"unix_socket_directories={home}",
                "-c",
                "max_connections=200",
                "-c",
                "shared_buffers=128MB",
                "-c",
                "fsync=on",
            ),
            user=OS_USER,
        )

    def after_healthy(self, ctx: StackContext) -> None:
        with psycopg.connect(
            host=LOOPBACK,
            port=ctx.port(ServiceName.POSTGRES, "sql"),
            user=POSTGRES_USER,
            password=ctx.credentials.postgres_password,
            dbname="postgres",
            autocommit=True,
        ) as conn:
            for database in (CATALOG_DATABASE, REGISTRY_DATABASE):
                exists = conn.execute(
                    "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
                ).fetchone()
                if exists is None:
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))


# initdb's pg_hba.conf admits loopback clients only. In K2's image the other services connect
# from the stack network, so password (SCRAM) authentication is opened to any address there;
# the port is published, if at all, on the host's loopback only.
HBA_NETWORK_RULE = "host all all 0.0.0.0/0 scram-sha-256"


def _allow_network_clients(ctx: StackContext) -> None:
    if ctx.bind_host == LOOPBACK:
        return
    hba = ctx.data_dir(ServiceName.POSTGRES) / "pg_hba.conf"
    lines = hba.read_text().splitlines()
    if HBA_NETWORK_RULE not in lines:
        hba.write_text("\n".join([*lines, HBA_NETWORK_RULE]) + "\n")


def _run_as_owner(argv: list[str], what: str) -> None:
    if _as_root():
        argv = ["runuser", "-u", OS_USER, "--", *argv]
    run_step(argv, what)


def _check_reachable(path: Path) -> None:
    """The postgres user must be able to walk down to the data directory."""
    for parent in path.parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            raise StackError(
                f"PostgreSQL runs as the '{OS_USER}' user, which cannot enter {parent} "
                f"(mode {stat.filemode(mode)}): put the stack elsewhere with K2_STACK_DIR"
            )


__all__ = ["PostgresLauncher"]
