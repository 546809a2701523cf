"""Stack configuration: read once, validated by one pydantic model, at preview time.

Every `k2:*` key of the stack is validated together: an unknown key, a replication factor
above the broker count or a missing (or non-secret) secret fails with a message naming the
key, before any resource is declared.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any

import pulumi
from pulumi.runtime import config as runtime_config
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel, to_snake

from k2.errors import ConfigError
from k2stack.docker.aliases import kafka_external_port
from k2stack.topology import LOOPBACK, SERVICES, ServiceName

NAMESPACE = "k2"


class DockerProvider(StrEnum):
    """What creates the containers: the pulumi-resource-docker plugin, or Pulumi dynamic
    resources that apply the same specs through the Docker Engine API (where the plugin
    cannot be had); `auto` means the plugin (K2's runner sets it to what it finds)."""

    AUTO = "auto"
    PLUGIN = "plugin"
    ENGINE_API = "engine-api"


class KafkaSecurity(StrEnum):
    """How Kafka clients authenticate: `none` (PLAINTEXT) or SASL/SCRAM-SHA-512 with ACLs."""

    NONE = "none"
    SCRAM = "scram"


# The Iceberg catalog's: every stack authenticates its catalog (no stack serves it openly).
CATALOG_SECRET_KEYS = (
    "catalogTokenKey",
    "catalogAdminSecret",
    "catalogIngestSecret",
    "catalogMaintainSecret",
    "catalogQuerySecret",
)
# Required secrets of every stack.
SECRET_KEYS = (
    "postgresPassword",
    "s3AccessKeyId",
    "s3SecretAccessKey",
    "grafanaAdminPassword",
    "registryPassword",
    # The Iceberg catalog's token-signing key and its principals' secrets (k2stack.catalog_auth).
    *CATALOG_SECRET_KEYS,
)
# The SCRAM principals' passwords: required (as secrets) only with kafkaSecurity=scram.
KAFKA_SECRET_KEYS = ("kafkaAdminPassword", "kafkaIngestPassword", "kafkaProducerPassword")
# The Kafka web UI's sign-in password: required (as a secret) only with kafkaUi=true.
KAFKA_UI_SECRET_KEYS = ("kafkaUiPassword",)
# Passwords that end up in a URL's userinfo, a JAAS `password="..."` or a kafka-storage
# `--add-scram [name=..,password=..]` argument: URL-safe characters need no quoting anywhere.
URL_SAFE_PASSWORD = re.compile(r"[A-Za-z0-9_-]{16,128}")


def _url_safe(value: SecretStr) -> SecretStr:
    if not URL_SAFE_PASSWORD.fullmatch(value.get_secret_value()):
        raise ValueError("must be 16 to 128 URL-safe characters (A-Z, a-z, 0-9, _ and -)")
    return value


UrlSafeSecret = Annotated[SecretStr, AfterValidator(_url_safe)]


class StackConfig(BaseModel):
    """The `k2:*` keys of a stack config (camelCase in Pulumi.<stack>.yaml)."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True
    )

    # Prefix of every Docker resource name: unique per run for the ephemeral ci stack.
    name_prefix: str = Field(pattern=r"^[a-z][a-z0-9-]{1,30}$")
    # Ephemeral stacks keep no state beyond `pulumi destroy` and publish, if at all, on
    # loopback only.
    ephemeral: bool = False
    publish_ports: bool = True
    publish_address: str = LOOPBACK
    # Added to every published host port, so several stacks can run on one host (CI picks a
    # free block per run).
    port_offset: int = Field(default=0, ge=0, le=30000)
    # Grafana runs the upstream image (no K2 image: it is not packaged where K2 builds).
    grafana: bool = True
    # The Kafka web UI (kafbat, upstream image, k2stack.docker.kafka_ui): off unless asked for.
    kafka_ui: bool = False
    docker_provider: DockerProvider = DockerProvider.AUTO
    kafka_brokers: int = Field(default=1, ge=1, le=9)
    replication_factor: int = Field(default=1, ge=1)
    min_insync_replicas: int = Field(default=1, ge=1)
    worker_replicas: int = Field(default=1, ge=0, le=32)
    # Apicurio instances on the one PostgreSQL (the seed's availability: clients fail over).
    registry_replicas: int = Field(default=1, ge=1, le=5)
    postgres_password: SecretStr = Field(min_length=12)
    s3_access_key_id: SecretStr = Field(min_length=3)
    s3_secret_access_key: SecretStr = Field(min_length=8)
    grafana_admin_password: SecretStr = Field(min_length=8)
    # The registry's one HTTP basic auth user: lowercase letters and digits only, since it is a
    # Quarkus map key set through an environment variable name (QUARKUS_..._USERS_<USER>).
    registry_user: str = Field(default="k2registry", pattern=r"^[a-z][a-z0-9]{2,30}$")
    registry_password: UrlSafeSecret
    catalog_token_key: UrlSafeSecret
    catalog_admin_secret: UrlSafeSecret
    catalog_ingest_secret: UrlSafeSecret
    catalog_maintain_secret: UrlSafeSecret
    catalog_query_secret: UrlSafeSecret
    kafka_security: KafkaSecurity = KafkaSecurity.NONE
    kafka_admin_password: UrlSafeSecret | None = None
    kafka_ingest_password: UrlSafeSecret | None = None
    kafka_producer_password: UrlSafeSecret | None = None
    kafka_ui_password: UrlSafeSecret | None = None

    @model_validator(mode="after")
    def _consistent(self) -> StackConfig:
        if self.replication_factor > self.kafka_brokers:
            raise ValueError(
                f"k2:replicationFactor is {self.replication_factor} but k2:kafkaBrokers is "
                f"{self.kafka_brokers}: a topic cannot have more replicas than brokers"
            )
        if self.min_insync_replicas > self.replication_factor:
            raise ValueError(
                f"k2:minInsyncReplicas is {self.min_insync_replicas}, above "
                f"k2:replicationFactor {self.replication_factor}: no write could succeed"
            )
        # A broker's external listener binds its published port inside the container too, where
        # the controller listener already has its port: Kafka would refuse to start.
        controller = SERVICES[ServiceName.KAFKA].ports["controller"]
        clash = [
            i
            for i in range(self.kafka_brokers)
            if kafka_external_port(i, self.port_offset) == controller
        ]
        if self.publish_ports and clash:
            raise ValueError(
                f"k2:portOffset {self.port_offset} puts broker {clash[0]}'s external listener "
                f"on Kafka's controller port {controller}: pick another offset"
            )
        if self.ephemeral and self.publish_ports and self.publish_address != LOOPBACK:
            raise ValueError(
                f"k2:publishAddress must be {LOOPBACK} on an ephemeral stack (k2:ephemeral)"
            )
        if self.kafka_security is KafkaSecurity.SCRAM:
            missing = [key for key in KAFKA_SECRET_KEYS if getattr(self, to_snake(key)) is None]
            if missing:
                raise ValueError(
                    "k2:kafkaSecurity is scram but "
                    + ", ".join(f"k2:{key}" for key in missing)
                    + " not set (secrets: pulumi config set --secret k2:<key> ...)"
                )
        if self.kafka_ui and self.kafka_ui_password is None:
            raise ValueError(
                "k2:kafkaUi is true but k2:kafkaUiPassword is not set "
                "(a secret: pulumi config set --secret k2:kafkaUiPassword ...)"
            )
        return self

    @property
    def kafka_cluster_id(self) -> str:
        """A stable KRaft cluster id (22 chars of base64) derived from the name prefix.

        Never starting with '-', as Kafka's own `random-uuid` never does: `kafka-storage
        format --cluster-id -x...` reads the id as a flag ("expected one argument"), which
        failed `pulumi up` of a ci stack whose random name hashed to such an id (1 in 64).
        """
        for salt in itertools.count():
            seed = self.name_prefix if salt == 0 else f"{self.name_prefix}#{salt}"
            digest = hashlib.sha256(seed.encode()).digest()[:16]
            text = base64.urlsafe_b64encode(digest).decode().rstrip("=")
            if not text.startswith("-"):
                return text
        raise AssertionError("unreachable")  # itertools.count() never ends


def raw_config() -> dict[str, Any]:
    """Every `k2:*` key set on the stack, whichever way the engine passed it."""
    merged = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    return {k: v for k, v in merged.items() if k.startswith(NAMESPACE + ":")}


def _is_secret(key: str) -> bool:
    return pulumi.runtime.is_config_secret(key) or key in (
        runtime_config.get_config_secret_keys_env()
    )


def validate(raw: Mapping[str, Any], secret_keys: frozenset[str], stack: str) -> StackConfig:
    """Validate a stack's `k2:*` config; raise ConfigError naming every bad key."""
    values = {key.split(":", 1)[1]: value for key, value in raw.items()}
    problems = [
        f"k2:{key} must be set as a secret (pulumi config set --secret k2:{key} ...)"
        for key in (*SECRET_KEYS, *KAFKA_SECRET_KEYS, *KAFKA_UI_SECRET_KEYS)
        if key in values and f"{NAMESPACE}:{key}" not in secret_keys
    ]
    config: StackConfig | None = None
    try:
        config = StackConfig.model_validate(values)
    except ValidationError as e:
        problems.extend(_describe(error) for error in e.errors())
        if not problems:  # pragma: no cover - every pydantic error is described
            raise ConfigError(f"stack {stack}: invalid config") from e
        raise ConfigError(f"stack {stack}: invalid config:\n  " + "\n  ".join(problems)) from e
    if stack == "dev" and config.publish_address != LOOPBACK:
        problems.append(f"k2:publishAddress must be {LOOPBACK} on the dev stack")
    if problems:
        raise ConfigError(f"stack {stack}: invalid config:\n  " + "\n  ".join(problems))
    return config


def _describe(error: Mapping[str, Any]) -> str:
    loc = ".".join(str(part) for part in error["loc"])
    if error["type"] == "extra_forbidden":
        return f"k2:{loc} is not a known config key"
    if error["type"] == "missing":
        hint = " (a secret: pulumi config set --secret)" if loc in SECRET_KEYS else ""
        return f"k2:{loc} is required{hint}"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"k2:{loc}: {message}" if loc else message


def load() -> StackConfig:
    """Read and validate the current stack's config (call once, from __main__)."""
    raw = raw_config()
    secret = frozenset(key for key in raw if _is_secret(key))
    return validate(raw, secret, pulumi.get_stack())


class Secrets:
    """The stack's secrets as Pulumi secret outputs: never plain values in state or outputs."""

    def __init__(self, config: StackConfig) -> None:
        def secret(value: SecretStr) -> pulumi.Output[str]:
            return pulumi.Output.secret(value.get_secret_value())

        self.postgres_password = secret(config.postgres_password)
        self.s3_access_key_id = secret(config.s3_access_key_id)
        self.s3_secret_access_key = secret(config.s3_secret_access_key)
        self.grafana_admin_password = secret(config.grafana_admin_password)
        self.registry_password = secret(config.registry_password)
        self.kafka_passwords: dict[str, pulumi.Output[str]] = {
            key: secret(value)
            for key in KAFKA_SECRET_KEYS
            if (value := getattr(config, to_snake(key))) is not None
        }
