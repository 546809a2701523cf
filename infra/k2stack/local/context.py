"""Where a local stack lives: state directory, shared cache, ports and credentials."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from k2stack.topology import LOOPBACK, SERVICES, Credentials, Profile, ServiceName


def default_cache_dir() -> Path:
    """Downloads (jars, tarballs, .debs) shared by every stack on this machine, outside git."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(os.environ.get("K2_CACHE_DIR", str(Path(base) / "k2")))


def default_state_dir(profile: Profile = Profile.SINGLE) -> Path:
    """The persistent local stack's data, logs and pid files, outside git.

    As root the stack lives under /var/lib/k2: PostgreSQL then runs as the `postgres` user,
    which cannot enter root's home directory. The cluster profile's stack lives beside the
    single-node one (`stack-cluster`), so both can exist; `K2_STACK_DIR` overrides either.
    """
    if "K2_STACK_DIR" in os.environ:
        return Path(os.environ["K2_STACK_DIR"])
    name = "stack" if profile is Profile.SINGLE else f"stack-{profile.value}"
    if os.geteuid() == 0:
        return Path("/var/lib/k2") / name
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "k2" / name


@dataclass(frozen=True)
class KafkaListener:
    """A client listener of a Kafka node: where it binds and what it tells clients."""

    name: str
    port: int
    advertised_host: str


@dataclass(frozen=True)
class KafkaNode:
    """One Kafka node's place in its cluster (node id, quorum, listeners, replication).

    The local stack runs one node on loopback; K2's Kafka image gets the same launcher a
    description of a multi-broker cluster on the stack network (`k2stack.serve`).
    """

    node_id: int
    # Every controller of the quorum: (node id, host, controller port).
    voters: tuple[tuple[int, str, int], ...]
    # The first listener carries inter-broker traffic.
    listeners: tuple[KafkaListener, ...]
    controller_port: int
    replication_factor: int = 1
    min_insync_replicas: int = 1
    # None: the launcher makes one and keeps it beside the data (the local stack).
    cluster_id: str | None = None
    # SASL/SCRAM on the client listeners (`k2stack.kafka_security`): every principal's
    # password by user name, the admin's included. None: PLAINTEXT.
    scram_passwords: Mapping[str, str] | None = None

    def admin_client_config(self) -> dict[str, str]:
        """librdkafka settings for an admin client of this node (empty for PLAINTEXT)."""
        from k2stack import kafka_security as sasl

        if not self.scram_passwords:
            return {}
        return sasl.client_config(sasl.ADMIN.user, self.scram_passwords[sasl.ADMIN.user])


@dataclass(frozen=True)
class Replica:
    """One process of a service that runs several (a cluster's broker, a registry instance):
    its own ports, directory, log and pid file go by `name` (e.g. `kafka-1`)."""

    service: ServiceName
    index: int
    name: str


@dataclass(frozen=True)
class StackContext:
    """Everything a launcher needs to know about the stack it is part of.

    The local backend runs every service on 127.0.0.1 (the defaults). In K2's images the same
    launchers run inside containers (`k2stack.serve`): they bind the container's interfaces
    and reach each other by network alias (`hosts`).
    """

    state_dir: Path
    cache_dir: Path
    ports: Mapping[ServiceName, Mapping[str, int]]
    credentials: Credentials
    # The address every service listens on.
    bind_host: str = LOOPBACK
    # How a service reaches another one; absent: loopback.
    hosts: Mapping[ServiceName, str] = field(default_factory=dict)
    # Kafka's cluster layout; None: a single node on loopback at the stack's ports.
    kafka: KafkaNode | None = None
    # The network alias every ingest worker shares (Prometheus finds workers by DNS in
    # Docker); None: workers register files for Prometheus' file discovery (local stack).
    worker_alias: str | None = None
    worker_metrics_port: int | None = None
    # The replica this context starts (its service's `ports` are that replica's); None: the
    # service runs once and goes by its own name.
    replica: Replica | None = None
    # Heap limits (MiB) that differ from the topology's `memory_mb` (the cluster profile's).
    heaps_mb: Mapping[ServiceName, int] = field(default_factory=dict)

    def port(self, service: ServiceName, name: str) -> int:
        return self.ports[service][name]

    def kafka_admin_config(self) -> dict[str, str]:
        """librdkafka settings for K2's own admin client of this stack's Kafka (probes, ACLs):
        the node's SCRAM admin login, or the stack's; empty for PLAINTEXT."""
        from k2stack import kafka_security as sasl

        if self.kafka is not None:
            return self.kafka.admin_client_config()
        password = self.credentials.kafka_scram_passwords.get(sasl.ADMIN.user)
        return sasl.client_config(sasl.ADMIN.user, password) if password else {}

    def host(self, service: ServiceName) -> str:
        """The host name another service uses to reach `service`."""
        return self.hosts.get(service, LOOPBACK)

    def address(self, service: ServiceName, port_name: str) -> str:
        """`host:port` of a service's named port, as other services reach it."""
        return f"{self.host(service)}:{self.port(service, port_name)}"

    def process_name(self, service: ServiceName) -> str:
        """The name of `service`'s process in this context: the replica's, or the service's."""
        if self.replica is not None and self.replica.service is service:
            return self.replica.name
        return service.value

    def heap_mb(self, service: ServiceName) -> int:
        """The heap limit (-Xmx) of the service's JVM."""
        return self.heaps_mb.get(service, SERVICES[service].memory_mb)

    def service_dir(self, service: ServiceName) -> Path:
        """The service's own directory under the state directory (config, data)."""
        return self.state_dir / "services" / self.process_name(service)

    def data_dir(self, service: ServiceName, name: str = "data") -> Path:
        return self.service_dir(service) / name

    def log_file(self, service: ServiceName) -> Path:
        return self.state_dir / "logs" / f"{self.process_name(service)}.log"

    def pid_file(self, service: ServiceName) -> Path:
        return self.state_dir / "pids" / f"{self.process_name(service)}.pid"

    def artifact_dir(self, name: str) -> Path:
        """A directory in the shared download cache."""
        return self.cache_dir / name
