"""The stack's `K2_*` endpoints, computed by `k2stack.topology.endpoints` (the one source).

Two views of the same stack: `in_network` is what containers use (service aliases and
container ports), `for_host` is what `pulumi stack output` gives the host (the publish
address and published ports; an ephemeral stack publishes nothing, so it gives the
in-network view, for tests that run in a container on the stack network).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pulumi

from k2.settings import KAFKA_ENV_PREFIX, SECRET_ENDPOINT_FIELDS, KafkaClientSecurity
from k2stack.pulumi import catalog, kafka, postgres, registry
from k2stack.pulumi import kafka_security as sasl
from k2stack.pulumi.config import KafkaSecurity, ObjectStoreKind
from k2stack.pulumi.service import Deployment
from k2stack.topology import (
    KAFKA_DOCKER_INTERNAL_PORT,
    SERVICES,
    Credentials,
    ServiceName,
    endpoints,
)

PROMETHEUS_ALIAS = ServiceName.PROMETHEUS.value
KAFKA_SECRET_FIELDS = frozenset(
    name
    for name, field in KafkaClientSecurity.model_fields.items()
    if "SecretStr" in str(field.annotation)
)
S3_ENDPOINT = "K2_S3_ENDPOINT"
REGISTRY_URL = "K2_SCHEMA_REGISTRY_URL"
# Outputs that carry a credential stay Pulumi secrets; the rest are plain. The registry URL
# carries the registry user's password as userinfo.
SECRET_OUTPUTS = frozenset(
    {"K2_" + field.upper() for field in SECRET_ENDPOINT_FIELDS}
    | {"K2_S3_ACCESS_KEY_ID", REGISTRY_URL}
    | {KAFKA_ENV_PREFIX + field.upper() for field in KAFKA_SECRET_FIELDS}
)


def _ports(in_network: bool) -> dict[ServiceName, dict[str, int]]:
    ports = {name: dict(spec.ports) for name, spec in SERVICES.items()}
    if in_network:
        ports[ServiceName.KAFKA]["broker"] = KAFKA_DOCKER_INTERNAL_PORT
    return ports


def _aliases(object_store_alias: str | None) -> dict[ServiceName, str]:
    aliases = {
        ServiceName.POSTGRES: postgres.ALIAS,
        ServiceName.KAFKA: kafka.ALIAS,
        ServiceName.REGISTRY: registry.ALIAS,
        ServiceName.ICEBERG_REST: catalog.ALIAS,
        ServiceName.PROMETHEUS: PROMETHEUS_ALIAS,
    }
    if object_store_alias:
        aliases[ServiceName.SEAWEEDFS] = object_store_alias
    return aliases


def stack_endpoints(
    deployment: Deployment, object_store_alias: str | None, in_network: bool
) -> pulumi.Output[dict[str, str]]:
    """Every `K2_*` variable of the stack, as one (secret) output."""
    config = deployment.config
    use_network = in_network or not config.publish_ports
    s = deployment.secrets

    def compute(values: list[str]) -> dict[str, str]:
        credentials = Credentials(
            postgres_password=values[0],
            s3_access_key_id=values[1],
            s3_secret_access_key=values[2],
            registry_user=config.registry_user,
            registry_password=values[3],
        )
        env = endpoints(
            _ports(use_network),
            credentials,
            host=config.publish_address,
            service_hosts=_aliases(object_store_alias) if use_network else None,
        )
        if config.object_store is ObjectStoreKind.EXTERNAL:
            env[S3_ENDPOINT] = str(config.external_s3_endpoint)
        return env

    return pulumi.Output.all(
        s.postgres_password, s.s3_access_key_id, s.s3_secret_access_key, s.registry_password
    ).apply(compute)


def with_kafka_client(
    deployment: Deployment, env: pulumi.Output[dict[str, str]], principal: sasl.Principal
) -> pulumi.Output[dict[str, str]]:
    """`env` plus the `K2_KAFKA_*` security variables for `principal` (none without SCRAM)."""
    if deployment.config.kafka_security is not KafkaSecurity.SCRAM:
        return env
    password = deployment.secrets.kafka_passwords[principal.config_key]

    def merge(values: list[Any]) -> dict[str, str]:
        base, secret = values
        extra = dict(line.split("=", 1) for line in sasl.client_env(principal, secret))
        return {**base, **extra}

    return pulumi.Output.all(env, password).apply(merge)


def split(
    env: pulumi.Output[dict[str, str]], names: tuple[str, ...]
) -> Mapping[str, pulumi.Output[str]]:
    """One output per variable: secret only where the value carries a credential."""
    out: dict[str, pulumi.Output[str]] = {}
    for name in names:
        value = env.apply(_item(name))
        out[name] = value if name in SECRET_OUTPUTS else pulumi.Output.unsecret(value)
    return out


def _item(name: str) -> Callable[[dict[str, str]], str]:
    def get(env: dict[str, str]) -> str:
        return env[name]

    return get


def as_env_list(env: pulumi.Output[dict[str, str]]) -> pulumi.Output[list[str]]:
    """`NAME=value` lines for a container's environment (secret, since it holds passwords)."""
    return env.apply(lambda e: [f"{k}={v}" for k, v in sorted(e.items())])
