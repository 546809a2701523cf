"""The local stack: install, start in dependency order, probe, stop — by pid, nothing else.

A stack is a state directory. Its manifest (`stack.json`) fixes its ports and generated
credentials on the first `up`, so data and endpoints survive down/up.
"""

from __future__ import annotations

import json
import secrets
import shutil
import sys
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

from k2.errors import StackError
from k2stack.local import health, processes
from k2stack.local.context import StackContext, default_cache_dir
from k2stack.local.launcher import Launcher
from k2stack.local.ports import check_free, default_ports, free_ports
from k2stack.local.services import launchers
from k2stack.topology import (
    SERVICES,
    Credentials,
    ServiceName,
    ServiceSpec,
    endpoints,
    start_order,
)

MANIFEST = "stack.json"


@dataclass(frozen=True)
class ServiceStatus:
    service: ServiceName
    pid: int | None
    healthy: bool
    detail: str
    log_file: Path


def _say(message: str) -> None:
    print(f"[k2 stack] {message}", file=sys.stderr, flush=True)


class LocalStack:
    """One local stack, identified by its state directory."""

    def __init__(
        self,
        state_dir: Path,
        cache_dir: Path | None = None,
        *,
        ephemeral_ports: bool = False,
        only: Collection[ServiceName] | None = None,
        log: Callable[[str], None] = _say,
    ) -> None:
        self.state_dir = state_dir
        self.cache_dir = cache_dir or default_cache_dir()
        self._ephemeral_ports = ephemeral_ports
        self._log = log
        self._launchers: Mapping[ServiceName, Launcher] | None = None
        self._services = _with_dependencies(only) if only is not None else None

    # -- manifest ---------------------------------------------------------------------------

    @property
    def manifest_path(self) -> Path:
        return self.state_dir / MANIFEST

    def _load_or_create_context(self) -> StackContext:
        if self.manifest_path.is_file():
            return self.context()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        # PostgreSQL runs as its own OS user and must be able to enter the state directory.
        self.state_dir.chmod(0o755)
        ports = free_ports() if self._ephemeral_ports else default_ports()
        credentials = Credentials(
            postgres_password=secrets.token_urlsafe(24),
            s3_access_key_id="k2" + secrets.token_hex(8),
            s3_secret_access_key=secrets.token_urlsafe(32),
            **_registry_credentials(),
        )
        manifest = {
            "ports": {svc.value: p for svc, p in ports.items()},
            "credentials": credentials.model_dump(),
        }
        self.manifest_path.write_text(json.dumps(manifest, indent=2))
        self.manifest_path.chmod(0o600)
        return self.context()

    def context(self) -> StackContext:
        """The stack's context, from its manifest."""
        try:
            manifest = json.loads(self.manifest_path.read_text())
            ports = {ServiceName(k): dict(v) for k, v in manifest["ports"].items()}
            credentials = Credentials.model_validate(manifest["credentials"])
            if credentials.registry_basic_auth() is None:
                # A stack made before the registry required auth: give it credentials now.
                credentials = credentials.model_copy(update=_registry_credentials())
                manifest["credentials"] = credentials.model_dump()
                self.manifest_path.write_text(json.dumps(manifest, indent=2))
        except (OSError, ValueError, KeyError) as e:
            raise StackError(
                f"no usable stack at {self.state_dir} ({e}); run `task stack:up` first"
            ) from e
        return StackContext(
            state_dir=self.state_dir,
            cache_dir=self.cache_dir,
            ports=ports,
            credentials=credentials,
        )

    def launchers(self) -> Mapping[ServiceName, Launcher]:
        if self._launchers is None:
            self._launchers = launchers()
        return self._launchers

    # -- lifecycle ----------------------------------------------------------------------------

    def install(self) -> None:
        """Fetch every service's artifacts (idempotent)."""
        ctx = self._load_or_create_context()
        for spec in self._order():
            self.launchers()[spec.name].install(ctx)

    def up(self) -> dict[str, str]:
        """Start every service not already running and healthy; return the K2_* endpoints.

        On any failure, every process this call started is stopped again and the error names
        the service, its probe and its log file.
        """
        ctx = self._load_or_create_context()
        started: list[ServiceSpec] = []
        began = time.monotonic()
        try:
            self.install()
            for spec in self._order():
                if self._start_one(spec, ctx):
                    started.append(spec)
        except BaseException:
            for spec in reversed(started):
                processes.stop(ctx.pid_file(spec.name))
            raise
        self._log(f"all services healthy in {time.monotonic() - began:.1f}s")
        return self.env()

    def _start_one(self, spec: ServiceSpec, ctx: StackContext) -> bool:
        """Start a service unless it already runs healthy; returns whether it was started."""
        launcher = self.launchers()[spec.name]
        pid_file = ctx.pid_file(spec.name)
        log_file = ctx.log_file(spec.name)
        current = processes.running(pid_file)
        if current is not None:
            problem = health.check(spec.health, spec.name, ctx)
            if problem is None:
                self._log(f"{spec.name.value}: already running (pid {current.pid})")
                return False
            raise StackError(
                f"{spec.name.value} runs (pid {current.pid}) but is unhealthy: {problem}; "
                f"see {log_file} (`task stack:down` then `task stack:up` restarts it)"
            )
        for dep in spec.depends_on:
            dep_problem = health.check(SERVICES[dep].health, dep, ctx)
            if dep_problem is not None:
                raise StackError(f"{spec.name.value} needs {dep.value}, unhealthy: {dep_problem}")
        check_free(spec.name, ctx.ports[spec.name])
        launcher.prepare(ctx)
        command = launcher.command(ctx)
        proc = processes.start(command, log_file, pid_file)
        self._log(f"{spec.name.value}: started (pid {proc.pid}), waiting for its probe")
        try:
            took = health.wait_healthy(
                spec.health,
                spec.name,
                ctx,
                alive=lambda: processes.running(pid_file) is not None,
                log_file=log_file,
            )
            launcher.after_healthy(ctx)
        except BaseException:
            processes.stop(pid_file)
            raise
        self._log(f"{spec.name.value}: healthy after {took:.1f}s")
        return True

    def down(self, purge: bool = False) -> list[ServiceName]:
        """Stop every process this stack started (by pid), newest first; `purge` deletes data."""
        stopped: list[ServiceName] = []
        if self.manifest_path.is_file():
            ctx = self.context()
            for spec in reversed(self._order()):
                if processes.stop(ctx.pid_file(spec.name)):
                    self._log(f"{spec.name.value}: stopped")
                    stopped.append(spec.name)
        if purge and self.state_dir.exists():
            shutil.rmtree(self.state_dir)
            self._log(f"deleted {self.state_dir}")
        return stopped

    def stop_service(self, name: ServiceName) -> bool:
        """Stop one service (fault injection, restarts); its data stays."""
        return processes.stop(self.context().pid_file(name))

    def start_service(self, name: ServiceName) -> bool:
        """Start one stopped service again (after its dependencies' probes pass)."""
        return self._start_one(SERVICES[name], self.context())

    def status(self) -> list[ServiceStatus]:
        ctx = self.context()
        out: list[ServiceStatus] = []
        for spec in self._order():
            proc = processes.running(ctx.pid_file(spec.name))
            if proc is None:
                out.append(
                    ServiceStatus(spec.name, None, False, "stopped", ctx.log_file(spec.name))
                )
                continue
            problem = health.check(spec.health, spec.name, ctx)
            out.append(
                ServiceStatus(
                    spec.name,
                    proc.pid,
                    problem is None,
                    "healthy" if problem is None else problem,
                    ctx.log_file(spec.name),
                )
            )
        return out

    def env(self) -> dict[str, str]:
        ctx = self.context()
        return endpoints(ctx.ports, ctx.credentials)

    def _order(self) -> tuple[ServiceSpec, ...]:
        """The services this stack runs, dependencies first."""
        return tuple(s for s in start_order() if self._services is None or s.name in self._services)


def _with_dependencies(names: Collection[ServiceName]) -> frozenset[ServiceName]:
    """The named services plus everything they depend on, transitively."""
    out: set[ServiceName] = set()
    pending = list(names)
    while pending:
        name = pending.pop()
        if name not in out:
            out.add(name)
            pending.extend(SERVICES[name].depends_on)
    return frozenset(out)


def _registry_credentials() -> dict[str, str]:
    """A generated registry user and password (URL-safe: they travel as URL userinfo)."""
    return {
        "registry_user": "k2-" + secrets.token_hex(4),
        "registry_password": secrets.token_urlsafe(24),
    }
