"""Endpoint settings shared by every K2 service.

The `K2_*` names are defined here once: `task stack:env` prints them, the Pulumi program
exports them as stack outputs and every K2 command reads them (pydantic-settings, prefix `K2_`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "K2_"
# S3 needs a region name although SeaweedFS ignores it; clients and servers must agree on one.
S3_REGION = "us-east-1"


class Endpoints(BaseSettings):
    """Where the stack's services are. Every field maps to one `K2_*` variable."""

    # hide_input_in_errors: a validation error would otherwise print the secrets it was given.
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="ignore", frozen=True, hide_input_in_errors=True
    )

    kafka_bootstrap_servers: str
    # Carries the registry's basic-auth credentials as URL userinfo: kept out of repr (pytest
    # failure headers, logs of settings objects), like the SecretStr fields.
    schema_registry_url: str = Field(repr=False)
    iceberg_catalog_uri: str
    s3_endpoint: str
    s3_access_key_id: str
    s3_secret_access_key: SecretStr
    postgres_dsn: SecretStr
    prometheus_url: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Endpoints:
        """Endpoints from `K2_*` variables in `env` (e.g. `LocalStack.up()`), not os.environ."""
        return cls.model_validate(
            {
                k.removeprefix(ENV_PREFIX).lower(): v
                for k, v in env.items()
                if k.startswith(ENV_PREFIX)
            }
        )

    def as_env(self) -> dict[str, str]:
        """These endpoints as `K2_*` variables, secrets revealed: for child processes only."""
        env: dict[str, str] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            text = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
            env[ENV_PREFIX + name.upper()] = text
        return env


def endpoint_env_names() -> tuple[str, ...]:
    """The `K2_*` variable names, in declaration order."""
    return tuple(ENV_PREFIX + name.upper() for name in Endpoints.model_fields)


SECRET_ENDPOINT_FIELDS = frozenset(
    name for name, field in Endpoints.model_fields.items() if field.annotation is SecretStr
)


KAFKA_ENV_PREFIX = ENV_PREFIX + "KAFKA_"


class KafkaClientSecurity(BaseSettings):
    """How K2's Kafka clients authenticate: optional `K2_KAFKA_*` settings.

    Unset, clients connect over PLAINTEXT (the local backend and the dev/ci stacks). A stack
    with `k2:kafkaSecurity: scram` sets all four: SASL_PLAINTEXT with SCRAM-SHA-512 as one
    principal. Read by `k2.kafka`, the one Kafka client factory. Kept out of `Endpoints` on
    purpose: `Endpoints.as_env()` writes every field back out as a `K2_*` variable, where an
    unset optional field would come back as the string "None" (child processes inherit these
    from os.environ instead).
    """

    # hide_input_in_errors: an incomplete-settings error would otherwise print the password.
    model_config = SettingsConfigDict(
        env_prefix=KAFKA_ENV_PREFIX, extra="ignore", frozen=True, hide_input_in_errors=True
    )

    security_protocol: Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None

    @model_validator(mode="after")
    def _complete(self) -> KafkaClientSecurity:
        sasl = self.security_protocol.startswith("SASL_")
        given = [self.sasl_mechanism, self.sasl_username, self.sasl_password]
        if sasl and any(value is None for value in given):
            raise ValueError(
                f"{KAFKA_ENV_PREFIX}SECURITY_PROTOCOL={self.security_protocol} needs "
                f"{KAFKA_ENV_PREFIX}SASL_MECHANISM, _SASL_USERNAME and _SASL_PASSWORD"
            )
        if not sasl and any(value is not None for value in given):
            raise ValueError(f"{KAFKA_ENV_PREFIX}SASL_* are set but the protocol is PLAINTEXT")
        return self

    def client_config(self) -> dict[str, str]:
        """librdkafka settings to merge into every Kafka client's config (empty if PLAINTEXT)."""
        if self.sasl_password is None:
            return {}
        return {
            "security.protocol": self.security_protocol,
            "sasl.mechanism": str(self.sasl_mechanism),
            "sasl.username": str(self.sasl_username),
            "sasl.password": self.sasl_password.get_secret_value(),
        }


def kafka_security_env_names() -> tuple[str, ...]:
    """The optional `K2_KAFKA_*` security variable names, in declaration order."""
    return tuple(KAFKA_ENV_PREFIX + name.upper() for name in KafkaClientSecurity.model_fields)
