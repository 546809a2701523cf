"""One launcher per service of the topology."""

from __future__ import annotations

from collections.abc import Mapping

from k2stack.local.launcher import Launcher
from k2stack.topology import ServiceName


def launchers() -> Mapping[ServiceName, Launcher]:
    """Every service's launcher (imported here, lazily, so the CLI starts fast)."""
    from k2stack.local.services.iceberg_rest import IcebergRestLauncher
    from k2stack.local.services.kafka import KafkaLauncher
    from k2stack.local.services.postgres import PostgresLauncher
    from k2stack.local.services.prometheus import PrometheusLauncher
    from k2stack.local.services.registry import RegistryLauncher
    from k2stack.local.services.seaweedfs import SeaweedfsLauncher

    found: list[Launcher] = [
        PostgresLauncher(),
        SeaweedfsLauncher(),
        KafkaLauncher(),
        RegistryLauncher(),
        IcebergRestLauncher(),
        PrometheusLauncher(),
    ]
    return {launcher.spec.name: launcher for launcher in found}
