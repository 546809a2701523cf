"""The Iceberg REST catalog: JDBC catalog in PostgreSQL, S3FileIO on the object store.

Configured only through CATALOG_* variables (`__` becomes `-`, `_` becomes `.`).
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi

from k2stack.pulumi import postgres
from k2stack.pulumi.service import ContainerSpec, Deployment, container, pull
from k2stack.topology import (
    CATALOG_DATABASE,
    POSTGRES_USER,
    SERVICES,
    WAREHOUSE_BUCKET,
    ServiceName,
)

SPEC = SERVICES[ServiceName.ICEBERG_REST]
ALIAS = SPEC.name.value


def catalog_env(s3_endpoint: str, password: str, key_id: str, secret_key: str) -> list[str]:
    pg = postgres.SPEC.ports["sql"]
    return [
        *(f"{k}={v}" for k, v in SPEC.env.items()),
        f"CATALOG_REST_PORT={SPEC.ports['http']}",
        f"CATALOG_URI=jdbc:postgresql://{postgres.ALIAS}:{pg}/{CATALOG_DATABASE}",
        f"CATALOG_JDBC_USER={POSTGRES_USER}",
        f"CATALOG_JDBC_PASSWORD={password}",
        f"CATALOG_WAREHOUSE=s3://{WAREHOUSE_BUCKET}/",
        "CATALOG_IO__IMPL=org.apache.iceberg.aws.s3.S3FileIO",
        f"CATALOG_S3_ENDPOINT={s3_endpoint}",
        "CATALOG_S3_PATH__STYLE__ACCESS=true",
        f"CATALOG_S3_ACCESS__KEY__ID={key_id}",
        f"CATALOG_S3_SECRET__ACCESS__KEY={secret_key}",
        f"JAVA_TOOL_OPTIONS=-Xmx{SPEC.memory_mb * 3 // 4}m",
    ]


class CatalogComponent(pulumi.ComponentResource):
    def __init__(
        self,
        name: str,
        deployment: Deployment,
        s3_endpoint: str,
        depends_on: Sequence[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("k2:catalog:IcebergRestCatalog", name, None, opts)
        port = SPEC.ports["http"]
        s = deployment.secrets
        envs = pulumi.Output.all(
            s.postgres_password, s.s3_access_key_id, s.s3_secret_access_key
        ).apply(lambda v: catalog_env(s3_endpoint, v[0], v[1], v[2]))
        self.container = container(
            deployment,
            spec=SPEC,
            image=pull(deployment, SPEC, self).image_id,
            container_spec=ContainerSpec(
                service=ALIAS, alias=ALIAS, envs=envs, publish={port: port}
            ),
            parent=self,
            depends_on=depends_on,
        )
        self.register_outputs({"container": self.container.name})
