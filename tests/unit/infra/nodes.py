"""The Kafka node both the launcher tests and the `k2-stack serve` tests expect."""

from __future__ import annotations

from collections.abc import Mapping

from k2stack.local.context import KafkaListener, KafkaNode
from k2stack.topology import SERVICES, ServiceName

CONTROLLER = SERVICES[ServiceName.KAFKA].ports["controller"]


def cluster_broker_1(scram: Mapping[str, str] | None, cluster_id: str) -> KafkaNode:
    """Broker 1 of the cluster stack (3 nodes, RF 3, min ISR 2) on its Docker network."""
    return KafkaNode(
        node_id=1,
        voters=tuple((i, f"kafka-{i}", CONTROLLER) for i in range(3)),
        listeners=(
            KafkaListener("INTERNAL", 9092, "kafka-1"),
            KafkaListener("EXTERNAL", 19192, "127.0.0.1"),
        ),
        controller_port=CONTROLLER,
        replication_factor=3,
        min_insync_replicas=2,
        cluster_id=cluster_id,
        scram_passwords=scram,
    )
