"""How services find each other on a Docker stack's network: aliases and in-network ports.

Read by the container specs (`k2stack.docker.stack_spec`, the network aliases they declare)
and by `k2stack.serve` inside K2's images (the hosts a launcher connects to), so the two
agree by construction.
"""

from __future__ import annotations

from k2stack.topology import KAFKA_DOCKER_INTERNAL_PORT, SERVICES, ServiceName, replica_name

# Every ingest worker replica shares this alias; Prometheus resolves it to all of them.
WORKER_ALIAS = "ingest-worker"
# Brokers share the service's alias too (a round-robin bootstrap name) besides their own.
KAFKA_ALIAS = ServiceName.KAFKA.value
# Broker i's external (host-facing) listener: the topology's broker port plus i * this step.
KAFKA_EXTERNAL_PORT_STEP = 100


# Registry instance i (a stack with several): its own alias, and the host port its HTTP API
# is published on, the topology's plus i * this step (the container port stays the same).
REGISTRY_PUBLISHED_PORT_STEP = 10


def registry_alias(index: int, replicas: int) -> str:
    """Registry instance `index`'s container and alias: `registry` when it runs alone."""
    return replica_name(ServiceName.REGISTRY, index, replicas)


def registry_published_port(index: int, offset: int = 0) -> int:
    return (
        SERVICES[ServiceName.REGISTRY].ports["http"] + REGISTRY_PUBLISHED_PORT_STEP * index + offset
    )


def alias(service: ServiceName) -> str:
    """The network alias of a service (Kafka: the alias all brokers share)."""
    return service.value


def broker_alias(index: int) -> str:
    return f"{KAFKA_ALIAS}-{index}"


def kafka_external_port(index: int, offset: int = 0) -> int:
    """Broker `index`'s host-facing listener port, the same inside and outside the container.

    Kafka advertises the port it listens on; publishing the same number on the host keeps the
    advertised address reachable from the host.
    """
    return SERVICES[ServiceName.KAFKA].ports["broker"] + KAFKA_EXTERNAL_PORT_STEP * index + offset


def in_network_ports() -> dict[ServiceName, dict[str, int]]:
    """Each service's ports as containers on the network reach them (Kafka: its INTERNAL
    listener, which advertises the broker's alias)."""
    ports = {name: dict(spec.ports) for name, spec in SERVICES.items()}
    ports[ServiceName.KAFKA]["broker"] = KAFKA_DOCKER_INTERNAL_PORT
    return ports


def in_network_hosts() -> dict[ServiceName, str]:
    return {name: alias(name) for name in SERVICES}
