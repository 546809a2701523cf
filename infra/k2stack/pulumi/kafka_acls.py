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

import pulumi
import pulumi_docker as docker

from k2.contracts.catalogue import Catalogue, load_catalogue
from k2.ingest.config import IngestSettings
from k2stack.pulumi import kafka_security as sasl
from k2stack.pulumi.service import Deployment
from k2stack.topology import KAFKA_DOCKER_INTERNAL_PORT

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


class KafkaAclsComponent(pulumi.ComponentResource):
    """Runs once, after the brokers are healthy; the ingest workers start after it."""

    def __init__(
        self,
        name: str,
        deployment: Deployment,
        *,
        image: pulumi.Input[str],
        brokers: Sequence[docker.Container],
        broker_aliases: Sequence[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("k2:kafka:Acls", name, None, opts)
        bootstrap = ",".join(f"{alias}:{KAFKA_DOCKER_INTERNAL_PORT}" for alias in broker_aliases)
        self.grants = acl_grants(load_catalogue(), ingest_group_prefix())
        admin_password = deployment.secrets.kafka_passwords[sasl.ADMIN.config_key]
        self.job = docker.Container(
            deployment.name("kafka-acls"),
            name=deployment.name("kafka-acls"),
            image=image,
            command=["sh", "-c", acl_script(self.grants, bootstrap)],
            envs=admin_password.apply(
                lambda p: [f"{sasl.ADMIN.password_env}={p}", f"KAFKA_HEAP_OPTS={JOB_HEAP}"]
            ),
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=deployment.network_name)],
            # A job: run once to completion; `attach` makes Pulumi wait for it to exit.
            must_run=False,
            attach=True,
            restart="no",
            memory=JOB_MEMORY_MB,
            privileged=False,
            labels=deployment.labels,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(brokers)),
        )
        self.register_outputs({"job": self.job.name})
