"""Choosing and checking the stack's ports."""

from __future__ import annotations

import socket
from collections.abc import Mapping

from k2.errors import StackError
from k2stack.topology import LOOPBACK, TOPOLOGY, Layout, ServiceName, replica_name

# SeaweedFS's worker dials the admin's gRPC port at admin + 10000 (see the topology).
_PAIRED = {(ServiceName.SEAWEEDFS, "admin_grpc"): (ServiceName.SEAWEEDFS, "admin", 10000)}
# A persistent stack of several processes per service (the cluster profile) sits beside the
# single-node one: every default port moves up by this much (no port of one stack is a port
# of the other), and replica i of a service adds i times the step.
MULTI_PROCESS_PORT_OFFSET = 500
REPLICA_PORT_STEP = 10


def default_ports() -> dict[ServiceName, dict[str, int]]:
    """The topology's ports: what the persistent local stack uses."""
    return {spec.name: dict(spec.ports) for spec in TOPOLOGY}


def is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def process_ports(layout: Layout, ephemeral: bool) -> dict[str, dict[str, int]]:
    """The ports of every process of a stack of this layout, by process name (`kafka-1`).

    Ephemeral stacks get free ports; a persistent single-node stack the topology's; a
    persistent stack with replicas the topology's moved by MULTI_PROCESS_PORT_OFFSET, replica i
    by i * REPLICA_PORT_STEP more.
    """
    names = [
        (spec, replica_name(spec.name, index, layout.replicas(spec.name)), index)
        for spec in TOPOLOGY
        for index in range(layout.replicas(spec.name))
    ]
    if ephemeral:
        pick = _FreePorts()
        return {name: pick.service(spec.name, spec.ports) for spec, name, _ in names}
    offset = 0 if layout == Layout() else MULTI_PROCESS_PORT_OFFSET
    return {
        name: {k: v + offset + index * REPLICA_PORT_STEP for k, v in spec.ports.items()}
        for spec, name, index in names
    }


class _FreePorts:
    """Picks distinct free loopback ports, keeping SeaweedFS's paired ports paired."""

    def __init__(self) -> None:
        self._taken: set[int] = set()

    def _pick(self, offset_partner: int | None = None) -> int:
        while True:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind((LOOPBACK, 0))
                port = int(sock.getsockname()[1])
            partner = port + offset_partner if offset_partner else None
            if port in self._taken:
                continue
            if partner is not None and (
                partner > 65535 or partner in self._taken or not is_free(partner)
            ):
                continue
            self._taken.add(port)
            if partner is not None:
                self._taken.add(partner)
            return port

    def service(self, service: ServiceName, names: Mapping[str, int]) -> dict[str, int]:
        ports: dict[str, int] = {}
        paired_bases = {
            base_name: offset
            for (svc, _), (_, base_name, offset) in _PAIRED.items()
            if svc == service
        }
        for name in names:
            if (service, name) in _PAIRED:
                continue
            ports[name] = self._pick(paired_bases.get(name))
        for (svc, name), (_, base_name, offset) in _PAIRED.items():
            if svc == service:
                ports[name] = ports[base_name] + offset
        return ports


def check_free(service: ServiceName, ports: Mapping[str, int]) -> None:
    """Fail clearly when a port the service needs is already taken."""
    busy = {name: port for name, port in ports.items() if not is_free(port)}
    if busy:
        listing = ", ".join(f"{name}={port}" for name, port in busy.items())
        raise StackError(
            f"{service.value} cannot start: port(s) already in use on {LOOPBACK}: {listing}. "
            "Stop whatever holds them, or point K2_STACK_DIR at another stack."
        )
