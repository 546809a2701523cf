"""The ACLs of a SCRAM-secured Kafka (`k2:kafkaSecurity: scram`), and applying them.

Grants are data, derived from the contracts catalogue, so a new dataset gets its ACLs with no
edit here: the ingest workers read every dataset topic (and their consumer groups, which
share the ingest group prefix) and write the DLQ topics; producers write the dataset topics.
`k2-stack kafka-acls` applies them as the admin principal (a one-shot job of the Docker
stack); creating an ACL that exists is a no-op, so the job can run on every `up`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

# confluent_kafka.admin re-exports these without `__all__`, which mypy --strict refuses.
from confluent_kafka.admin._acl import AclBinding, AclOperation, AclPermissionType
from confluent_kafka.admin._resource import ResourcePatternType, ResourceType

from k2.contracts.catalogue import Catalogue
from k2.errors import StackError
from k2.ingest.config import IngestSettings
from k2stack import kafka_security as sasl

Operation = Literal["Read", "Write", "Describe"]
CREATE_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class AclGrant:
    """Allow `principal` the `operations` on the named topics or groups."""

    principal: sasl.Principal
    operations: tuple[Operation, ...]
    resource: Literal["topic", "group"]
    names: tuple[str, ...]
    prefixed: bool = False

    def bindings(self) -> list[AclBinding]:
        kind = ResourceType.TOPIC if self.resource == "topic" else ResourceType.GROUP
        pattern = ResourcePatternType.PREFIXED if self.prefixed else ResourcePatternType.LITERAL
        return [
            AclBinding(
                kind,
                name,
                pattern,
                self.principal.acl_principal,
                "*",
                AclOperation[operation.upper()],
                AclPermissionType.ALLOW,
            )
            for name in self.names
            for operation in self.operations
        ]


def ingest_group_prefix() -> str:
    """Every ingest worker's group id starts with this (one group per dataset topic)."""
    return str(IngestSettings.model_fields["group_id_prefix"].default)


def acl_grants(catalogue: Catalogue, group_prefix: str) -> list[AclGrant]:
    datasets = sorted(catalogue.datasets.values(), key=lambda d: d.name)
    topics = tuple(d.topic.name for d in datasets)
    dlqs = tuple(d.dlq_topic for d in datasets)
    return [
        AclGrant(sasl.INGEST, ("Read", "Describe"), "topic", topics),
        AclGrant(sasl.INGEST, ("Read", "Describe"), "group", (group_prefix,), prefixed=True),
        # Idempotent producers need only Write on the topic since Kafka 3.0 (KIP-679).
        AclGrant(sasl.INGEST, ("Write", "Describe"), "topic", dlqs),
        AclGrant(sasl.PRODUCER, ("Write", "Describe"), "topic", topics),
    ]


def apply_acls(admin: AdminClient, grants: Sequence[AclGrant]) -> int:
    """Create every grant's ACL bindings (idempotent); returns how many bindings."""
    bindings = [binding for grant in grants for binding in grant.bindings()]
    futures = admin.create_acls(bindings, request_timeout=CREATE_TIMEOUT_S)
    for binding, future in futures.items():
        try:
            future.result()
        except KafkaException as e:
            raise StackError(f"kafka: creating ACL {binding} failed: {e}") from e
    return len(bindings)


def grant_catalogue_acls(admin: AdminClient) -> int:
    """Grant every principal its ACLs for the contracts catalogue (idempotent); how many
    bindings. The Docker stack's `k2-stack kafka-acls` job and the local cluster profile."""
    from k2.contracts.catalogue import load_catalogue

    return apply_acls(admin, acl_grants(load_catalogue(), ingest_group_prefix()))
