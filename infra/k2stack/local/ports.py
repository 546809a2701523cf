"""Choosing and checking the stack's ports."""

from __future__ import annotations

import socket
from collections.abc import Mapping

from k2.errors import StackError
from k2stack.topology import LOOPBACK, TOPOLOGY, ServiceName

# SeaweedFS's worker dials the admin's gRPC port at admin + 10000 (see the topology).
_PAIRED = {(ServiceName.SEAWEEDFS, "admin_grpc"): (ServiceName.SEAWEEDFS, "admin", 10000)}


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


def free_ports() -> dict[ServiceName, dict[str, int]]:
    """Fresh free ports for every port of every service (ephemeral stacks)."""
    taken: set[int] = set()

    def pick(offset_partner: int | None = None) -> int:
        while True:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind((LOOPBACK, 0))
                port = int(sock.getsockname()[1])
            partner = port + offset_partner if offset_partner else None
            if port in taken:
                continue
            if partner is not None and (
                partner > 65535 or partner in taken or not is_free(partner)
            ):
                continue
            taken.add(port)
            if partner is not None:
                taken.add(partner)
            return port

    out: dict[ServiceName, dict[str, int]] = {}
    for spec in TOPOLOGY:
        ports: dict[str, int] = {}
        paired_bases = {
            base_name: offset
            for (svc, _), (_, base_name, offset) in _PAIRED.items()
            if svc == spec.name
        }
        for name in spec.ports:
            if (spec.name, name) in _PAIRED:
                continue
            ports[name] = pick(paired_bases.get(name))
        for (svc, name), (_, base_name, offset) in _PAIRED.items():
            if svc == spec.name:
                ports[name] = ports[base_name] + offset
        out[spec.name] = ports
    return out


def check_free(service: ServiceName, ports: Mapping[str, int]) -> None:
    """Fail clearly when a port the service needs is already taken."""
    busy = {name: port for name, port in ports.items() if not is_free(port)}
    if busy:
        listing = ", ".join(f"{name}={port}" for name, port in busy.items())
        raise StackError(
            f"{service.value} cannot start: port(s) already in use on {LOOPBACK}: {listing}. "
            "Stop whatever holds them, or point K2_STACK_DIR at another stack."
        )
