"""PostgreSQL: storage of the Iceberg catalog and of the schema registry."""

from __future__ import annotations

import pulumi

from k2stack.pulumi.service import ContainerSpec, Deployment, container, pull, volume
from k2stack.topology import (
    CATALOG_DATABASE,
    POSTGRES_USER,
    REGISTRY_DATABASE,
    SERVICES,
    ServiceName,
)

SPEC = SERVICES[ServiceName.POSTGRES]
ALIAS = SPEC.name.value
# The image's entrypoint runs this once, on an empty data directory.
INIT_SQL = f"CREATE DATABASE {REGISTRY_DATABASE} OWNER {POSTGRES_USER};\n"


class PostgresComponent(pulumi.ComponentResource):
    def __init__(
        self, name: str, deployment: Deployment, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("k2:postgres:Postgres", name, None, opts)
        port = SPEC.ports["sql"]
        image = pull(deployment, SPEC, self)
        data = volume(deployment, "postgres-data", self)
        self.container = container(
            deployment,
            spec=SPEC,
            image=image.image_id,
            container_spec=ContainerSpec(
                service=ALIAS,
                alias=ALIAS,
                envs=pulumi.Output.all(deployment.secrets.postgres_password).apply(
                    lambda s: [
                        f"POSTGRES_USER={POSTGRES_USER}",
                        f"POSTGRES_PASSWORD={s[0]}",
                        f"POSTGRES_DB={CATALOG_DATABASE}",
                        f"PGPORT={port}",
                        "PGDATA=/var/lib/postgresql/data/pgdata",
                    ]
                ),
                publish={port: port},
                volumes={"/var/lib/postgresql/data": data},
                uploads={"/docker-entrypoint-initdb.d/10-k2-databases.sql": INIT_SQL},
            ),
            parent=self,
        )
        self.register_outputs({"container": self.container.name})
