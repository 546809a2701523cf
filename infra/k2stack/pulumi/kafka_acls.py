"""The one-shot ACL job (`kafka-acls`, as the admin principal) of a SCRAM-secured Kafka.

Grants are data, derived from the contracts catalogue, so a new dataset gets its ACLs with no
edit here: the ingest workers read every dataset topic (and their consumer groups, which
share the ingest group prefix) and write the DLQ topics; producers write the dataset topics.
`kafka-acls --add` is idempotent, so the job can run again on every `pulumi up`.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from k2.contracts.catalogue import Catalogue
from k2.ingest.config import IngestSettings
from k2stack.pulumi import kafka_security as sasl

ACLS_TOOL = "/opt/kafka/bin/kafka-acls.sh"
JOB_MEMORY_MB = 512
JOB_HEAP = "-Xmx256m"

Operation = Literal["Read", "Write", "Describe"]


@dataclass(frozen=True)
class AclGrant:
    """Allow `principal` the `operations` on the named topics or groups."""

    principal: sasl.Principal
    operations: tuple[Operation, ...]
    resource: Literal["topic", "group"]
    names: tuple[str, ...]
    prefixed: bool = False

    def argv(self, bootstrap: str) -> list[str]:
        args = [
            ACLS_TOOL,
            "--bootstrap-server",
            bootstrap,
            "--command-config",
            sasl.CLIENT_PROPERTIES,
            "--add",
            "--allow-principal",
            self.principal.acl_principal,
        ]
        for operation in self.operations:
            args += ["--operation", operation]
        for name in self.names:
            args += [f"--{self.resource}", name]
        if self.prefixed:
            args += ["--resource-pattern-type", "prefixed"]
        return args


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


def acl_script(grants: Sequence[AclGrant], bootstrap: str) -> str:
    lines = ["set -e", sasl.client_properties_script(sasl.ADMIN)]
    lines += [shlex.join(grant.argv(bootstrap)) for grant in grants]
    return "\n".join(lines) + "\n"
