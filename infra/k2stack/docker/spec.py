"""What one container of the Docker stack is: plain, typed data, the same for every consumer.

`k2stack.docker.stack_spec.stack_spec` turns a stack's validated config into these; the Pulumi
components (pulumi_docker resources, or the Engine API provider where the docker plugin is
missing) and the Docker backend of `k2-stack` (`k2stack.docker.apply`) all create containers
from them, so what Pulumi declares and what the backend applies cannot drift (a test compares
them).

Secrets appear only in `env` (and `secret_env` names them): commands, health checks and files
refer to them as `$VARIABLE`, so no other field of a spec ever holds a password.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

# Every Docker object K2 creates carries this label, its value the stack's name prefix: how
# `destroy` and the leak check find what a stack made.
STACK_LABEL = "k2.stack"


class PortBinding(BaseModel):
    """A container port published on the host (always on an explicit address)."""

    model_config = ConfigDict(frozen=True)

    container_port: int
    host_port: int
    host_ip: str


class Healthcheck(BaseModel):
    """A container health check (Docker's `CMD` form) and its timing."""

    model_config = ConfigDict(frozen=True)

    test: tuple[str, ...]
    interval_s: float = 5.0
    timeout_s: float = 10.0
    start_period_s: float = 10.0
    retries: int = 24


class ContainerSpec(BaseModel):
    """One container: a long-running service, or a job that must exit 0 once (`job`)."""

    model_config = ConfigDict(frozen=True)

    # Docker's container name: `<prefix>-<service>`.
    name: str
    # The logical name inside the stack (`kafka-0`, `registry`, `ingest-worker-1`, `bootstrap`).
    service: str
    image: str
    command: tuple[str, ...] | None = None
    env: Mapping[str, str] = Field(default_factory=dict)
    # Keys of `env` whose values are secrets (Pulumi marks the whole env secret if any).
    secret_env: frozenset[str] = frozenset()
    ports: tuple[PortBinding, ...] = ()
    # Volume name -> path in the container.
    volumes: Mapping[str, str] = Field(default_factory=dict)
    # Files written into the container before it starts: path -> content (no secrets).
    uploads: Mapping[str, str] = Field(default_factory=dict)
    network: str
    hostname: str
    aliases: tuple[str, ...] = ()
    healthcheck: Healthcheck | None = None
    # Names (`name`) of containers that must be healthy (services) or have exited 0 (jobs)
    # before this one is created.
    depends_on: tuple[str, ...] = ()
    memory_mb: int
    user: str | None = None
    job: bool = False
    restart: str = "unless-stopped"
    labels: Mapping[str, str] = Field(default_factory=dict)
    # How long to wait for healthy (or for a job's exit) before giving up.
    wait_timeout_s: int = 180


class StackSpec(BaseModel):
    """Every Docker object of one stack, containers in dependency order."""

    model_config = ConfigDict(frozen=True)

    prefix: str
    network: str
    volumes: tuple[str, ...]
    containers: tuple[ContainerSpec, ...]
    labels: Mapping[str, str] = Field(default_factory=dict)

    def container(self, service: str) -> ContainerSpec:
        for spec in self.containers:
            if spec.service == service:
                return spec
        raise KeyError(service)
