"""`k2-stack serve <service>` and `k2-stack probe <service>`: the entry point of K2's images.

A container runs the very launcher the local backend runs (`k2stack.local.services`): the
same `prepare`, `command` and `after_healthy`, the same health probe. Only the context
differs: the service binds the container's interfaces, reaches the others by network alias
(`k2stack.docker.aliases`) and reads its secrets from `K2_SERVE_*` variables, which the
container spec (`k2stack.docker.stack_spec`) sets.

`serve` is the container's PID 1: it starts the service as its child, waits for the probe,
runs the one-time setup, then forwards SIGTERM/SIGINT to the child, reaps orphans, and exits
with the child's status, so `docker stop` and `docker kill` act on the service itself.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from k2.errors import StackError
from k2.settings import CatalogPrincipal
from k2stack import kafka_security as sasl
from k2stack.docker import aliases
from k2stack.local import health
from k2stack.local.context import KafkaListener, KafkaNode, StackContext, default_cache_dir
from k2stack.local.launcher import LaunchCommand
from k2stack.local.services import launchers
from k2stack.topology import (
    KAFKA_DOCKER_INTERNAL_PORT,
    LOOPBACK,
    SERVICES,
    Credentials,
    ServiceName,
)

SERVE_ENV_PREFIX = "K2_SERVE_"
# Where K2's images keep a service's state (a named volume is mounted under it).
CONTAINER_STATE_DIR = Path("/var/lib/k2/stack")
# How long a stopping service gets after SIGTERM before SIGKILL (Docker's own default is 10 s;
# the specs give containers longer, so the service is what decides).
STOP_GRACE_S = 25.0


class ServeSettings(BaseSettings):
    """A service container's context, from `K2_SERVE_*` variables (set by its spec)."""

    model_config = SettingsConfigDict(
        env_prefix=SERVE_ENV_PREFIX, extra="ignore", frozen=True, hide_input_in_errors=True
    )

    state_dir: Path = CONTAINER_STATE_DIR
    bind_host: str = "0.0.0.0"  # noqa: S104 - a container's interfaces, published on loopback
    # Each service is given only the secrets it uses; the others stay empty.
    postgres_password: SecretStr = SecretStr("")
    s3_access_key_id: str = ""
    s3_secret_access_key: SecretStr = SecretStr("")
    registry_user: str | None = None
    registry_password: SecretStr | None = None
    kafka_node_id: int = 0
    kafka_brokers: int = 1
    kafka_cluster_id: str | None = None
    kafka_replication_factor: int = 1
    kafka_min_insync_replicas: int = 1
    # The host-facing listener (published on the host at the same port), if any.
    kafka_external_port: int | None = None
    kafka_advertised_host: str = LOOPBACK
    worker_alias: str | None = None
    worker_metrics_port: int | None = None
    # SASL/SCRAM (`k2:kafkaSecurity: scram`): each principal's password; none: PLAINTEXT.
    kafka_scram_admin_password: SecretStr | None = None
    kafka_scram_ingest_password: SecretStr | None = None
    kafka_scram_producer_password: SecretStr | None = None
    # The Iceberg catalog's token-signing key and each principal's secret (catalog only).
    catalog_token_key: SecretStr | None = None
    catalog_admin_secret: SecretStr | None = None
    catalog_ingest_secret: SecretStr | None = None
    catalog_maintain_secret: SecretStr | None = None
    catalog_query_secret: SecretStr | None = None

    def scram_passwords(self) -> dict[str, str] | None:
        given = {
            sasl.ADMIN.user: self.kafka_scram_admin_password,
            sasl.INGEST.user: self.kafka_scram_ingest_password,
            sasl.PRODUCER.user: self.kafka_scram_producer_password,
        }
        if given[sasl.ADMIN.user] is None:
            return None
        return {user: value.get_secret_value() for user, value in given.items() if value}

    def catalog_secrets(self) -> dict[str, str]:
        """Each catalog principal's secret, by principal name (those given)."""
        out: dict[str, str] = {}
        for principal in CatalogPrincipal:
            value: SecretStr | None = getattr(self, f"catalog_{principal.value}_secret")
            if value is not None:
                out[principal.value] = value.get_secret_value()
        return out


def container_context(settings: ServeSettings) -> StackContext:
    """The launcher context of a service running in one of K2's containers."""
    registry_password = settings.registry_password
    credentials = Credentials(
        postgres_password=settings.postgres_password.get_secret_value(),
        s3_access_key_id=settings.s3_access_key_id,
        s3_secret_access_key=settings.s3_secret_access_key.get_secret_value(),
        registry_user=settings.registry_user,
        registry_password=registry_password.get_secret_value() if registry_password else None,
        catalog_token_key=(
            settings.catalog_token_key.get_secret_value() if settings.catalog_token_key else None
        ),
        catalog_secrets=settings.catalog_secrets(),
    )
    return StackContext(
        state_dir=settings.state_dir,
        cache_dir=default_cache_dir(),
        ports=aliases.in_network_ports(),
        credentials=credentials,
        bind_host=settings.bind_host,
        hosts=aliases.in_network_hosts(),
        kafka=_kafka_node(settings),
        worker_alias=settings.worker_alias,
        worker_metrics_port=settings.worker_metrics_port,
    )


def _kafka_node(settings: ServeSettings) -> KafkaNode:
    controller = SERVICES[ServiceName.KAFKA].ports["controller"]
    node = settings.kafka_node_id
    listeners = [
        # Containers on the network; also inter-broker traffic (the first listener).
        KafkaListener("INTERNAL", KAFKA_DOCKER_INTERNAL_PORT, aliases.broker_alias(node)),
    ]
    if settings.kafka_external_port is not None:
        listeners.append(
            KafkaListener("EXTERNAL", settings.kafka_external_port, settings.kafka_advertised_host)
        )
    return KafkaNode(
        node_id=node,
        voters=tuple(
            (i, aliases.broker_alias(i), controller) for i in range(settings.kafka_brokers)
        ),
        listeners=tuple(listeners),
        controller_port=controller,
        replication_factor=settings.kafka_replication_factor,
        min_insync_replicas=settings.kafka_min_insync_replicas,
        cluster_id=settings.kafka_cluster_id,
        scram_passwords=settings.scram_passwords(),
    )


def _say(message: str) -> None:
    print(f"[k2 serve] {message}", file=sys.stderr, flush=True)


def probe(service: ServiceName) -> str | None:
    """Run the service's health probe once against this container; None when healthy."""
    spec = SERVICES[service]
    return health.check(spec.health, service, container_context(ServeSettings()))


def serve(service: ServiceName) -> int:
    """Prepare and run `service` in this container; return its exit status."""
    ctx = container_context(ServeSettings())
    launcher = launchers()[service]
    # Finds the artifacts the image carries and downloads nothing (tested offline).
    launcher.install(ctx)
    launcher.prepare(ctx)
    command = launcher.command(ctx)
    pid = _spawn(command)
    _say(f"{service.value}: started (pid {pid})")
    child = _Child(pid)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, child.forward)
    try:
        took = health.wait_healthy(
            SERVICES[service].health,
            service,
            ctx,
            alive=child.alive,
            log_file=ctx.log_file(service),
        )
        # The one-time setup (databases, compatibility level) reaches the service over
        # loopback, in this very container.
        launcher.after_healthy(ctx)
    except StackError as e:
        _say(f"{service.value}: {e}")
        child.stop()
        return 1
    _say(f"{service.value}: healthy after {took:.1f}s")
    return child.wait()


def _spawn(command: LaunchCommand) -> int:
    """Start the service with our stdout/stderr (the container's log)."""
    argv = list(command.argv)
    if command.cwd is not None:
        command.cwd.mkdir(parents=True, exist_ok=True)
        argv = ["env", "-C", str(command.cwd), *argv]
    env = {**os.environ, **command.env}
    # Our own settings carry secrets the service does not need in its environment.
    env = {k: v for k, v in env.items() if not k.startswith(SERVE_ENV_PREFIX)}
    try:
        return os.posix_spawnp(argv[0], argv, env)
    except OSError as e:
        raise StackError(f"cannot start {argv[0]}: {e}") from e


class _Child:
    """The service process, as PID 1 must handle it: signals forwarded, every orphan reaped."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.status: int | None = None

    def forward(self, signum: int, _frame: FrameType | None) -> None:
        if self.status is None:
            os.kill(self.pid, signum)

    def _reap(self, block: bool) -> None:
        while self.status is None:
            try:
                pid, status = os.waitpid(-1, 0 if block else os.WNOHANG)
            except ChildProcessError:
                self.status = 1
                return
            except InterruptedError:
                continue
            if pid == 0:
                return
            if pid == self.pid:
                self.status = os.waitstatus_to_exitcode(status)

    def alive(self) -> bool:
        self._reap(block=False)
        return self.status is None

    def wait(self) -> int:
        self._reap(block=True)
        status = self.status if self.status is not None else 1
        # A service killed by a signal: report it the shell's way (128 + signal).
        return 128 - status if status < 0 else status

    def stop(self) -> None:
        if not self.alive():
            return
        os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        while time.monotonic() < deadline and self.alive():
            time.sleep(0.2)
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
            self.wait()
