"""Apicurio Registry with its Confluent-compatible API, stored in PostgreSQL."""

from __future__ import annotations

import pulumi

from k2stack.pulumi import postgres
from k2stack.pulumi.service import ContainerSpec, Deployment, container, pull
from k2stack.topology import (
    POSTGRES_USER,
    REGISTRY_COMPATIBILITY,
    REGISTRY_DATABASE,
    SERVICES,
    ServiceName,
)

SPEC = SERVICES[ServiceName.REGISTRY]
ALIAS = SPEC.name.value


def registry_env(password: str) -> list[str]:
    pg = postgres.SPEC.ports["sql"]
    return [
        f"QUARKUS_HTTP_PORT={SPEC.ports['http']}",
        "APICURIO_STORAGE_KIND=sql",
        "APICURIO_STORAGE_SQL_KIND=postgresql",
        f"APICURIO_DATASOURCE_URL=jdbc:postgresql://{postgres.ALIAS}:{pg}/{REGISTRY_DATABASE}",
        f"APICURIO_DATASOURCE_USERNAME={POSTGRES_USER}",
        f"APICURIO_DATASOURCE_PASSWORD={password}",
        f"APICURIO_RULES_DEFAULT_GLOBAL_COMPATIBILITY={REGISTRY_COMPATIBILITY}",
        f"JAVA_OPTS_APPEND=-Xmx{SPEC.memory_mb * 3 // 4}m",
    ]


class RegistryComponent(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        deployment: Deployment,
        database: pulumi.Resource,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("k2:registry:Registry", name, None, opts)
        port = SPEC.ports["http"]
        image = pull(deployment, SPEC, self)
        self.container = container(
            deployment,
            spec=SPEC,
            image=image.image_id,
            container_spec=ContainerSpec(
                service=ALIAS,
                alias=ALIAS,
                envs=deployment.secrets.postgres_password.apply(registry_env),
                publish={port: port},
            ),
            parent=self,
            depends_on=[database],
        )
        self.register_outputs({"container": self.container.name})
