"""The optional Kafka web UI of the Docker stack (`k2:kafkaUi: true`): kafbat UI for Apache Kafka.

Topics (the `.dlq` ones too, with their messages decoded through the registry), consumer
groups and their lag, read-only. It signs in to every service with the stack's own
credentials: Kafka as the admin principal when the stack uses SCRAM, the registry with its
basic-auth user, and people sign in to it with `k2:kafkaUiPassword` (user `admin`). Published
on the stack's publish address (loopback unless configured otherwise), like every service.

Untested where K2 is developed: its image cannot be pulled there, and no Kafka web UI installs
from the registries those machines reach (see `k2stack.topology.KAFKA_UI`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from k2.settings import registry_urls
from k2stack import kafka_security as sasl
from k2stack.docker.spec import ContainerSpec, Healthcheck
from k2stack.docker.stack_spec import kafka_passwords, network_endpoints
from k2stack.pulumi.config import StackConfig
from k2stack.topology import KAFKA_UI, LOOPBACK

if TYPE_CHECKING:
    from k2stack.docker.stack_spec import _Builder

UI_USER = "admin"


def _without_userinfo(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def kafka_ui_env(
    config: StackConfig, network_env: dict[str, str], kafka_passwords: dict[str, str]
) -> tuple[dict[str, str], frozenset[str]]:
    """The UI's environment and which of its variables are secrets.

    `network_env` is the stack's `K2_*` for containers on its network; `kafka_passwords` the
    SCRAM principals' passwords by config key (empty without SCRAM).
    """
    if config.kafka_ui_password is None:
        raise ValueError("k2:kafkaUi needs k2:kafkaUiPassword")
    cluster = "KAFKA_CLUSTERS_0_"
    env = {
        "SERVER_PORT": str(KAFKA_UI.ports["http"]),
        cluster + "NAME": config.name_prefix,
        cluster + "BOOTSTRAPSERVERS": network_env["K2_KAFKA_BOOTSTRAP_SERVERS"],
        # A viewer: no topic or message is created, changed or deleted from the UI.
        cluster + "READONLY": "true",
        # Several registry instances are one comma-separated list, credentials apart.
        cluster + "SCHEMAREGISTRY": ",".join(
            _without_userinfo(url) for url in registry_urls(network_env["K2_SCHEMA_REGISTRY_URL"])
        ),
        cluster + "SCHEMAREGISTRYAUTH_USERNAME": config.registry_user,
        cluster + "SCHEMAREGISTRYAUTH_PASSWORD": config.registry_password.get_secret_value(),
        "AUTH_TYPE": "LOGIN_FORM",
        "SPRING_SECURITY_USER_NAME": UI_USER,
        "SPRING_SECURITY_USER_PASSWORD": config.kafka_ui_password.get_secret_value(),
        # No release check: the stack's containers call nothing outside the stack.
        "GITHUB_RELEASE_INFO_ENABLED": "false",
    }
    secret = {cluster + "SCHEMAREGISTRYAUTH_PASSWORD", "SPRING_SECURITY_USER_PASSWORD"}
    password = kafka_passwords.get(sasl.ADMIN.config_key)
    if password is not None:
        env |= {
            cluster + "PROPERTIES_SECURITY_PROTOCOL": sasl.PROTOCOL,
            cluster + "PROPERTIES_SASL_MECHANISM": sasl.MECHANISM,
            cluster + "PROPERTIES_SASL_JAAS_CONFIG": (
                "org.apache.kafka.common.security.scram.ScramLoginModule required "
                f'username="{sasl.ADMIN.user}" password="{password}";'
            ),
        }
        secret.add(cluster + "PROPERTIES_SASL_JAAS_CONFIG")
    return env, frozenset(secret)


def kafka_ui_container(b: _Builder, depends_on: Sequence[str]) -> ContainerSpec:
    """The UI's container spec, started after the brokers and registries it reads."""
    env, secret = kafka_ui_env(b.config, network_endpoints(b.config), kafka_passwords(b.config))
    port = KAFKA_UI.ports["http"]
    return ContainerSpec(
        name=b.name(KAFKA_UI.name),
        service=KAFKA_UI.name,
        image=KAFKA_UI.image,
        env=env,
        secret_env=secret,
        ports=b.publish(port),
        network=b.network,
        hostname=KAFKA_UI.name,
        aliases=(KAFKA_UI.name,),
        healthcheck=Healthcheck(
            test=(
                "CMD",
                "wget",
                "-q",
                "-O",
                "/dev/null",
                f"http://{LOOPBACK}:{port}{KAFKA_UI.health.path}",
            )
        ),
        depends_on=tuple(depends_on),
        memory_mb=KAFKA_UI.memory_mb,
        labels=b.labels,
    )
