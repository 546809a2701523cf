"""The processes of a local stack: one per service, or several for a replicated one.

A single-node stack runs one process per service, named after it (`kafka`). The cluster
profile (`k2stack.topology.LAYOUTS`) runs three Kafka nodes and two registry instances, each
a process of its own (`kafka-0` .. `kafka-2`, `registry-0`, `registry-1`) with its own ports,
directory, log and pid file, all on 127.0.0.1. Each Kafka node combines the broker and
controller roles: a three-voter quorum in three JVMs (separate roles would double the JVMs on
a 2-core machine; the README gives the measured figures).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace

from k2stack.local.context import KafkaListener, KafkaNode, Replica, StackContext
from k2stack.topology import (
    LOOPBACK,
    Layout,
    ServiceName,
    ServiceSpec,
    replica_name,
    start_order,
)


@dataclass(frozen=True)
class Unit:
    """One process of the stack: a service, or one replica of a replicated service."""

    spec: ServiceSpec
    index: int
    replicas: int

    @property
    def service(self) -> ServiceName:
        return self.spec.name

    @property
    def name(self) -> str:
        return replica_name(self.spec.name, self.index, self.replicas)

    @property
    def replica(self) -> Replica | None:
        return Replica(self.service, self.index, self.name) if self.replicas > 1 else None


def units(layout: Layout, services: Collection[ServiceName] | None = None) -> tuple[Unit, ...]:
    """Every process of a stack of `layout` (of `services` only, when given), in start order."""
    return tuple(
        Unit(spec, index, layout.replicas(spec.name))
        for spec in start_order()
        if services is None or spec.name in services
        for index in range(layout.replicas(spec.name))
    )


def base_context(
    ctx: StackContext, layout: Layout, ports: Mapping[str, Mapping[str, int]]
) -> StackContext:
    """The stack-wide context: each service reached at its first process's ports."""
    first = {spec.name: ports[unit_name] for spec, unit_name in _first_processes(layout)}
    return replace(ctx, ports=first, heaps_mb=dict(layout.memory_mb))


def unit_context(
    base: StackContext,
    unit: Unit,
    layout: Layout,
    ports: Mapping[str, Mapping[str, int]],
    kafka_cluster_id: str | None,
) -> StackContext:
    """The context `unit`'s launcher runs with: its own ports, name and (Kafka) node."""
    if unit.replicas == 1:
        return base
    ctx = replace(base, ports={**base.ports, unit.service: ports[unit.name]}, replica=unit.replica)
    if unit.service is ServiceName.KAFKA:
        passwords = base.credentials.kafka_scram_passwords
        node = cluster_node(unit.index, layout, ports, kafka_cluster_id, passwords or None)
        ctx = replace(ctx, kafka=node)
    return ctx


def cluster_node(
    index: int,
    layout: Layout,
    ports: Mapping[str, Mapping[str, int]],
    cluster_id: str | None,
    scram_passwords: Mapping[str, str] | None = None,
) -> KafkaNode:
    """Node `index` of a local Kafka cluster: broker and controller, voters on loopback;
    SASL/SCRAM on its client listener when `scram_passwords` are given."""
    count = layout.kafka_brokers

    def own(i: int) -> Mapping[str, int]:
        return ports[replica_name(ServiceName.KAFKA, i, count)]

    return KafkaNode(
        node_id=index,
        voters=tuple((i, LOOPBACK, own(i)["controller"]) for i in range(count)),
        listeners=(KafkaListener("PLAINTEXT", own(index)["broker"], LOOPBACK),),
        controller_port=own(index)["controller"],
        replication_factor=layout.replication_factor,
        min_insync_replicas=layout.min_insync_replicas,
        cluster_id=cluster_id,
        scram_passwords=scram_passwords,
    )


def replica_addresses(
    layout: Layout, ports: Mapping[str, Mapping[str, int]]
) -> dict[ServiceName, list[tuple[str, Mapping[str, int]]]]:
    """(host, ports) of every process of each replicated service, for `topology.endpoints`."""
    return {
        service: [
            (LOOPBACK, ports[replica_name(service, i, layout.replicas(service))])
            for i in range(layout.replicas(service))
        ]
        for service in ServiceName
        if layout.replicas(service) > 1
    }


def _first_processes(layout: Layout) -> list[tuple[ServiceSpec, str]]:
    return [(unit.spec, unit.name) for unit in units(layout) if unit.index == 0]
