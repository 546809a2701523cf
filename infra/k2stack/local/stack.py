"""The local stack: install, start in dependency order, probe, stop — by pid, nothing else.

A stack is a state directory. Its manifest (`stack.json`) fixes its profile (single node or
cluster, `k2stack.topology.Profile`), ports and generated credentials on the first `up`, so
data and endpoints survive down/up. A replicated service's processes (the cluster's Kafka
nodes, its registry instances) start together and are then probed one by one: a Kafka node
cannot answer before a majority of the controller quorum runs.
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
from typing import Any

from k2.errors import StackError
from k2stack import catalog_auth
from k2stack import kafka_security as sasl
from k2stack.local import health, processes
from k2stack.local.context import StackContext, default_cache_dir
from k2stack.local.launcher import Launcher
from k2stack.local.ports import check_free, process_ports
from k2stack.local.services import launchers
from k2stack.local.units import Unit, base_context, replica_addresses, unit_context, units
from k2stack.topology import (
    LAYOUTS,
    SERVICES,
    Credentials,
    Layout,
    Profile,
    ServiceName,
    ServiceSpec,
    endpoints,
)

MANIFEST = "stack.json"


@dataclass(frozen=True)
class ServiceStatus:
    service: ServiceName
    pid: int | None
    healthy: bool
    detail: str
    log_file: Path
    # The process's name: the service's, or a replica's (`kafka-1`).
    name: str


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
        profile: Profile | None = None,
    ) -> None:
        self.state_dir = state_dir
        self.cache_dir = cache_dir or default_cache_dir()
        self._ephemeral_ports = ephemeral_ports
        self._log = log
        self._launchers: Mapping[ServiceName, Launcher] | None = None
        self._services = _with_dependencies(only) if only is not None else None
        # None: whatever the manifest says (a new stack: single node).
        self._profile = profile

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
        profile = self._profile or Profile.SINGLE
        credentials = Credentials(
            postgres_password=secrets.token_urlsafe(24),
            s3_access_key_id="k2" + secrets.token_hex(8),
            s3_secret_access_key=secrets.token_urlsafe(32),
            **_registry_credentials(),
            **catalog_auth.generate(),
        )
        manifest: dict[str, object] = {
            "ports": process_ports(LAYOUTS[profile], self._ephemeral_ports),
        }
        if profile is not Profile.SINGLE:
            from k2stack.local.services.kafka import new_cluster_id  # the CLI starts without it

            # Every node of the cluster formats its storage with this one id and, as the Pulumi
            # `cluster` stack promises, with SASL/SCRAM credentials for K2's principals.
            manifest.update(profile=profile.value, kafka_cluster_id=new_cluster_id())
            credentials = credentials.model_copy(
                update={
                    "kafka_scram_passwords": {
                        p.user: secrets.token_urlsafe(24) for p in sasl.PRINCIPALS
                    }
                }
            )
        manifest["credentials"] = credentials.model_dump()
        self.manifest_path.write_text(json.dumps(manifest, indent=2))
        self.manifest_path.chmod(0o600)
        return self.context()

    def _manifest(self) -> dict[str, Any]:
        try:
            manifest: dict[str, Any] = json.loads(self.manifest_path.read_text())
            profile = Profile(manifest.get("profile", Profile.SINGLE.value))
        except (OSError, ValueError) as e:
            raise StackError(
                f"no usable stack at {self.state_dir} ({e}); run `task stack:up` first"
            ) from e
        if self._profile is not None and profile is not self._profile:
            raise StackError(
                f"the stack at {self.state_dir} is a {profile.value} stack, not "
                f"{self._profile.value}: use another state directory (K2_STACK_DIR) or "
                "`task stack:down -- --purge` it first"
            )
        return manifest

    @property
    def profile(self) -> Profile:
        """The stack's profile (from its manifest; single node for a stack not made yet)."""
        if not self.manifest_path.is_file():
            return self._profile or Profile.SINGLE
        return Profile(self._manifest().get("profile", Profile.SINGLE.value))

    @property
    def layout(self) -> Layout:
        return LAYOUTS[self.profile]

    def _ports(self) -> dict[str, dict[str, int]]:
        return {name: dict(ports) for name, ports in self._manifest()["ports"].items()}

    def context(self) -> StackContext:
        """The stack's context, from its manifest (each service at its first process)."""
        try:
            manifest = self._manifest()
            ports = self._ports()
            credentials = Credentials.model_validate(manifest["credentials"])
            if credentials.registry_basic_auth() is None:
                # A stack made before the registry required auth: give it credentials now.
                credentials = credentials.model_copy(update=_registry_credentials())
                manifest["credentials"] = credentials.model_dump()
                self.manifest_path.write_text(json.dumps(manifest, indent=2))
            if credentials.catalog_token_key is None:
                # A stack made before the catalog required authentication: the same.
                credentials = credentials.model_copy(update=catalog_auth.generate())
                manifest["credentials"] = credentials.model_dump()
                self.manifest_path.write_text(json.dumps(manifest, indent=2))
            plain = StackContext(
                state_dir=self.state_dir,
                cache_dir=self.cache_dir,
                ports={},
                credentials=credentials,
            )
            return base_context(plain, self.layout, ports)
        except (OSError, ValueError, KeyError) as e:
            raise StackError(
                f"no usable stack at {self.state_dir} ({e}); run `task stack:up` first"
            ) from e

    def _unit_context(self, unit: Unit, base: StackContext | None = None) -> StackContext:
        return unit_context(
            base or self.context(),
            unit,
            self.layout,
            self._ports(),
            self._manifest().get("kafka_cluster_id"),
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
        """Start every process not already running and healthy; return the K2_* endpoints.

        On any failure, every process this call started is stopped again and the error names
        the service, its probe and its log file.
        """
        ctx = self._load_or_create_context()
        started: list[tuple[ServiceName, StackContext]] = []
        began = time.monotonic()
        try:
            self.install()
            for spec in self._order():
                for unit_ctx in self._start_service(spec, self._units_of(spec.name), ctx):
                    started.append((spec.name, unit_ctx))
        except BaseException:
            for service, unit_ctx in reversed(started):
                processes.stop(unit_ctx.pid_file(service))
            raise
        self._log(f"all services healthy in {time.monotonic() - began:.1f}s")
        return self.env()

    def _start_service(
        self, spec: ServiceSpec, wanted: Collection[Unit], ctx: StackContext
    ) -> list[StackContext]:
        """Start `wanted` processes of a service unless they already run healthy; returns
        the contexts of those it started. All start first, then each is probed in turn."""
        started: list[StackContext] = []
        try:
            for unit in wanted:
                unit_ctx = self._unit_context(unit, ctx)
                if not self._already_running(spec, unit_ctx):
                    self._launch(spec, unit_ctx, ctx, probe_next=len(wanted) == 1)
                    started.append(unit_ctx)
            for unit_ctx in started:
                self._await_healthy(spec, unit_ctx)
            if started and spec.name is ServiceName.KAFKA and self.layout.kafka_brokers > 1:
                brokers = self.layout.kafka_brokers
                took = health.wait_kafka_cluster(ctx, brokers)
                self._log(f"kafka: all {brokers} brokers registered after {took:.1f}s")
                # ACLs live in the metadata log: granted when the whole cluster starts, not
                # again when one node restarts (failover timings stay the node's own).
                if ctx.credentials.kafka_scram_passwords and len(started) == brokers:
                    bootstrap = self.env()["K2_KAFKA_BOOTSTRAP_SERVERS"]
                    self._log(f"kafka: {_grant_acls(ctx, bootstrap)} ACL bindings in place")
        except BaseException:
            for unit_ctx in started:
                processes.stop(unit_ctx.pid_file(spec.name))
            raise
        return started

    def _launch(
        self, spec: ServiceSpec, unit_ctx: StackContext, ctx: StackContext, probe_next: bool
    ) -> None:
        """Check dependencies and ports, prepare and start one process (no waiting)."""
        for dep in spec.depends_on:
            dep_problem = health.check(SERVICES[dep].health, dep, ctx)
            if dep_problem is not None:
                raise StackError(f"{spec.name.value} needs {dep.value}, unhealthy: {dep_problem}")
        check_free(spec.name, unit_ctx.ports[spec.name])
        launcher = self.launchers()[spec.name]
        launcher.prepare(unit_ctx)
        command = launcher.command(unit_ctx)
        proc = processes.start(command, unit_ctx.log_file(spec.name), unit_ctx.pid_file(spec.name))
        then = ", waiting for its probe" if probe_next else ""
        self._log(f"{unit_ctx.process_name(spec.name)}: started (pid {proc.pid}){then}")

    def _await_healthy(self, spec: ServiceSpec, unit_ctx: StackContext) -> None:
        """Wait for a started process's probe, then run its one-time setup."""
        pid_file = unit_ctx.pid_file(spec.name)

        def alive() -> bool:
            return processes.running(pid_file) is not None

        took = health.wait_healthy(
            spec.health, spec.name, unit_ctx, alive=alive, log_file=unit_ctx.log_file(spec.name)
        )
        self.launchers()[spec.name].after_healthy(unit_ctx)
        self._log(f"{unit_ctx.process_name(spec.name)}: healthy after {took:.1f}s")

    def _already_running(self, spec: ServiceSpec, unit_ctx: StackContext) -> bool:
        """Whether the process runs and is healthy; StackError when it runs unhealthy."""
        name = unit_ctx.process_name(spec.name)
        current = processes.running(unit_ctx.pid_file(spec.name))
        if current is None:
            return False
        problem = health.check(spec.health, spec.name, unit_ctx)
        if problem is None:
            self._log(f"{name}: already running (pid {current.pid})")
            return True
        raise StackError(
            f"{name} runs (pid {current.pid}) but is unhealthy: {problem}; "
            f"see {unit_ctx.log_file(spec.name)} (`task stack:down` then `task stack:up` "
            "restarts it)"
        )

    def down(self, purge: bool = False) -> list[ServiceName]:
        """Stop every process this stack started (by pid), newest first; `purge` deletes data."""
        stopped: list[ServiceName] = []
        if self.manifest_path.is_file():
            for spec in reversed(self._order()):
                # A service's processes stop together (a Kafka cluster loses its quorum at once).
                units = self._units_of(spec.name)
                pid_files = [self._unit_context(unit).pid_file(spec.name) for unit in units]
                done = processes.stop_together(pid_files)
                for unit, was_running in zip(units, done, strict=True):
                    if was_running:
                        self._log(f"{unit.name}: stopped")
                if any(done):
                    stopped.append(spec.name)
        if purge and self.state_dir.exists():
            shutil.rmtree(self.state_dir)
            self._log(f"deleted {self.state_dir}")
        return stopped

    def stop_service(self, name: ServiceName) -> bool:
        """Stop every process of a service (fault injection, restarts); its data stays."""
        units = self._units_of(name)
        return any(
            processes.stop_together([self._unit_context(unit).pid_file(name) for unit in units])
        )

    def start_service(self, name: ServiceName) -> bool:
        """Start a service's stopped processes again (after its dependencies' probes pass)."""
        return bool(self._start_service(SERVICES[name], self._units_of(name), self.context()))

    def process_names(self, service: str | None = None) -> tuple[str, ...]:
        """The stack's processes by name (`postgres`, ..., `kafka-0`, `registry-1`): all, or
        those of `service` (a service's name or a process's own)."""
        return tuple(
            unit.name
            for unit in self._units()
            if service is None or service in (unit.name, unit.service.value)
        )

    def log_file(self, process: str) -> Path:
        """Where a process's output goes."""
        unit = self._unit(process)
        return self._unit_context(unit).log_file(unit.service)

    def stop(self, process: str) -> bool:
        """Stop one process (TERM, then KILL after a grace period); its data stays."""
        unit = self._unit(process)
        return processes.stop(self._unit_context(unit).pid_file(unit.service))

    def kill(self, process: str) -> bool:
        """kill -9 one process (fault injection): no goodbye, no flush; its data stays."""
        unit = self._unit(process)
        return processes.kill(self._unit_context(unit).pid_file(unit.service))

    def start(self, process: str) -> bool:
        """Start one stopped process again; returns whether it was started."""
        unit = self._unit(process)
        return bool(self._start_service(unit.spec, (unit,), self.context()))

    def pid(self, process: str) -> int | None:
        """The pid of a running process, None when it is not running."""
        unit = self._unit(process)
        running = processes.running(self._unit_context(unit).pid_file(unit.service))
        return running.pid if running is not None else None

    def process_context(self, process: str) -> StackContext:
        """The context a process runs with (its ports, directories, log and pid file)."""
        return self._unit_context(self._unit(process))

    def status(self) -> list[ServiceStatus]:
        ctx = self.context()
        out: list[ServiceStatus] = []
        for unit in self._units():
            unit_ctx = self._unit_context(unit, ctx)
            log_file = unit_ctx.log_file(unit.service)
            proc = processes.running(unit_ctx.pid_file(unit.service))
            if proc is None:
                out.append(ServiceStatus(unit.service, None, False, "stopped", log_file, unit.name))
                continue
            problem = health.check(unit.spec.health, unit.service, unit_ctx)
            out.append(
                ServiceStatus(
                    unit.service,
                    proc.pid,
                    problem is None,
                    "healthy" if problem is None else problem,
                    log_file,
                    unit.name,
                )
            )
        return out

    def env(self) -> dict[str, str]:
        """The `K2_*` variables of this stack; with SCRAM, its operators act as the admin
        principal (as on the Docker stack's host, `k2stack.docker.stack_spec.host_endpoints`)."""
        ctx = self.context()
        replicas = replica_addresses(self.layout, self._ports())
        env = endpoints(ctx.ports, ctx.credentials, replicas=replicas)
        password = ctx.credentials.kafka_scram_passwords.get(sasl.ADMIN.user)
        return {**env, **(sasl.client_env(sasl.ADMIN, password) if password else {})}

    def _order(self) -> tuple[ServiceSpec, ...]:
        """The services this stack runs, dependencies first."""
        seen: list[ServiceSpec] = []
        for unit in self._units():
            if unit.spec not in seen:
                seen.append(unit.spec)
        return tuple(seen)

    def _units(self) -> tuple[Unit, ...]:
        """Every process this stack runs, dependencies first."""
        return units(self.layout, self._services)

    def _units_of(self, service: ServiceName) -> tuple[Unit, ...]:
        return tuple(unit for unit in self._units() if unit.service is service)

    def _unit(self, process: str) -> Unit:
        for unit in self._units():
            if unit.name == process:
                return unit
        raise StackError(
            f"no process {process!r} in the stack at {self.state_dir}; it runs "
            + ", ".join(self.process_names())
        )


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


def _grant_acls(ctx: StackContext, bootstrap: str) -> int:
    """Grant K2's principals their ACLs from the catalogue, as the admin (idempotent): what
    the Docker stack's `k2-stack kafka-acls` job does. Returns how many bindings."""
    from confluent_kafka.admin import AdminClient

    from k2stack.kafka_acls import grant_catalogue_acls

    return grant_catalogue_acls(
        AdminClient({"bootstrap.servers": bootstrap, **ctx.kafka_admin_config()})
    )


def _registry_credentials() -> dict[str, str]:
    """A generated registry user and password (URL-safe: they travel as URL userinfo)."""
    return {
        "registry_user": "k2-" + secrets.token_hex(4),
        "registry_password": secrets.token_urlsafe(24),
    }
