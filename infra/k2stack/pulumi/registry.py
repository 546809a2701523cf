"""Apicurio Registry with its Confluent-compatible API, stored in PostgreSQL.

HTTP basic auth on every API path, as the local backend runs it (see
`k2stack.local.services.registry.auth_properties`): Quarkus' embedded users, one user with
Apicurio's admin role; the same Quarkus properties, here as QUARKUS_* variables. The
management interface (health, metrics) stays open, on the private network.
"""

from __future__ import annotations

import shlex

import pulumi

from k2stack.pulumi import postgres
from k2stack.pulumi.service import ContainerSpec, Deployment, container, pull
from k2stack.topology import (
    POSTGRES_USER,
    REGISTRY_COMPATIBILITY,
    REGISTRY_DATABASE,
    SERVICES,
    ServiceName,
    docker_healthcheck,
)

SPEC = SERVICES[ServiceName.REGISTRY]
ALIAS = SPEC.name.value


# Apicurio's admin role name, as the local backend gives its user.
REGISTRY_ROLE = "sr-admin"


def user_password_env(user: str) -> str:
    """The variable holding the user's password (a Quarkus map key: `users.<user>`)."""
    return f"QUARKUS_SECURITY_USERS_EMBEDDED_USERS_{user.upper()}"


def auth_env(user: str, password: str) -> list[str]:
    return [
        "QUARKUS_HTTP_AUTH_BASIC=true",
        "QUARKUS_SECURITY_USERS_EMBEDDED_ENABLED=true",
        "QUARKUS_SECURITY_USERS_EMBEDDED_PLAIN_TEXT=true",
        f"{user_password_env(user)}={password}",
        f"QUARKUS_SECURITY_USERS_EMBEDDED_ROLES_{user.upper()}={REGISTRY_ROLE}",
        "QUARKUS_HTTP_AUTH_PERMISSION_APIS_PATHS=/apis/*",
        "QUARKUS_HTTP_AUTH_PERMISSION_APIS_POLICY=authenticated",
    ]


def healthcheck(user: str) -> list[str]:
    """The topology's probe (an API path, so it needs the user), password from the env."""
    probe = docker_healthcheck(SPEC)
    return ["CMD", "sh", "-c", f'{shlex.join(probe[1:])} -u "{user}:${user_password_env(user)}"']


def registry_env(password: str, user: str, user_password: str) -> list[str]:
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
        *auth_env(user, user_password),
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
        s = deployment.secrets
        user = deployment.config.registry_user
        envs = pulumi.Output.all(s.postgres_password, s.registry_password).apply(
            lambda v: registry_env(v[0], user, v[1])
        )
        self.container = container(
            deployment,
            spec=SPEC,
            image=image.image_id,
            container_spec=ContainerSpec(
                service=ALIAS,
                alias=ALIAS,
                envs=envs,
                publish={port: port},
            ),
            parent=self,
            depends_on=[database],
            healthcheck=healthcheck(user),
        )
        self.register_outputs({"container": self.container.name})
