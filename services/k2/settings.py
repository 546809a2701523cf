"""Endpoint settings shared by every K2 service.

The `K2_*` names are defined here once: `task stack:env` prints them, the Pulumi program
exports them as stack outputs and every K2 command reads them (pydantic-settings, prefix `K2_`).
"""

from __future__ import annotations

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "K2_"
# S3 needs a region name although SeaweedFS ignores it; clients and servers must agree on one.
S3_REGION = "us-east-1"


class Endpoints(BaseSettings):
    """Where the stack's services are. Every field maps to one `K2_*` variable."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    kafka_bootstrap_servers: str
    schema_registry_url: str
    iceberg_catalog_uri: str
    s3_endpoint: str
    s3_access_key_id: str
    s3_secret_access_key: SecretStr
    postgres_dsn: SecretStr
    prometheus_url: str


def endpoint_env_names() -> tuple[str, ...]:
    """The `K2_*` variable names, in declaration order."""
    return tuple(ENV_PREFIX + name.upper() for name in Endpoints.model_fields)


SECRET_ENDPOINT_FIELDS = frozenset(
    name for name, field in Endpoints.model_fields.items() if field.annotation is SecretStr
)
