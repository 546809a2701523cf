"""Endpoint settings shared by every K2 service.

The `K2_*` names are defined here once: `task stack:env` prints them, the Pulumi program
exports them as stack outputs and every K2 command reads them (pydantic-settings, prefix `K2_`).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "K2_"
# S3 needs a region name although SeaweedFS ignores it; clients and servers must agree on one.
S3_REGION = "us-east-1"


# The Iceberg REST spec's OAuth2 token endpoint (client credentials in, bearer token out).
CATALOG_TOKEN_PATH = "/v1/oauth/tokens"  # noqa: S105 - a URL path, not a secret


class CatalogPrincipal(StrEnum):
    """Who a K2 process is to the Iceberg REST catalog; each command uses the least one it needs.

    query (`k2 query`, readers): reads only. ingest (`k2 ingest run`): appends, K2's own table
    properties (offsets, counts), added columns. maintain (`k2 maintain`): row-preserving
    rewrites, expiry of unreferenced snapshots. admin (`k2 bootstrap`, operators, tests):
    everything, drop included. The catalog enforces these (K2's catalog server, `CatalogPolicy`).
    """

    ADMIN = "admin"
    INGEST = "ingest"
    MAINTAIN = "maintain"
    QUERY = "query"

    @property
    def client_id(self) -> str:
        """The OAuth2 client id (the part before ':' of the credential)."""
        return f"k2-{self.value}"

    @property
    def field(self) -> str:
        """The `Endpoints` field holding this principal's credential."""
        return f"iceberg_{self.value}_credential"

    @property
    def env_name(self) -> str:
        """The `K2_*` variable holding this principal's credential."""
        return ENV_PREFIX + self.field.upper()


class Endpoints(BaseSettings):
    """Where the stack's services are. Every field maps to one `K2_*` variable.

    `K2_SCHEMA_REGISTRY_URL` is one registry URL, or several instances of one registry as a
    comma-separated list (`http://u:p@host-a:8081/apis/ccompat/v7,http://u:p@host-b:8081/...`,
    what `stack:env` prints for the cluster profile). Every registry client of K2 (the
    producers' serializer, bootstrap, the ingest worker's own schema lookup) tries them in
    turn and fails over to the next when one is unreachable or answers 5xx. Each URL carries
    the registry's basic-auth credentials as userinfo, the same on every URL: the instances
    share one user store, and confluent-kafka's client sends the first URL's credentials to
    all of them.
    """

    # hide_input_in_errors: a validation error would otherwise print the secrets it was given.
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="ignore", frozen=True, hide_input_in_errors=True
    )

    # Kafka's bootstrap servers, host:port[,host:port...] (`stack:env` prints the stack's).
    kafka_bootstrap_servers: str
    # One URL or a comma-separated list (see the class docstring), credentials as userinfo:
    # kept out of repr (pytest failure headers, logs of settings objects), like SecretStr.
    schema_registry_url: str = Field(repr=False)
    # The Iceberg REST catalog's base URL (http://host:port).
    iceberg_catalog_uri: str
    # The S3 object store holding the tables' files (path-style URLs), and its key pair.
    s3_endpoint: str
    s3_access_key_id: str
    s3_secret_access_key: SecretStr
    # PostgreSQL behind the catalog and the registry (postgresql://user:password@host:port/db).
    # For operators and tests only: no K2 command reads it, and whoever holds it can rewrite
    # the catalog's table pointers past the catalog's authorisation, so K2's containers are
    # never given it (optional for that reason; `stack:env` and the stack outputs carry it).
    postgres_dsn: SecretStr | None = None
    # Prometheus, which scrapes every worker's k2_* metrics (the demo reads freshness there).
    prometheus_url: str
    # The catalog credentials, `k2-<principal>:<secret>` (pyiceberg's and Java's `credential`
    # form), one per `CatalogPrincipal`. Optional each: a process is given only the ones its
    # commands use (a worker container: ingest's), and a command whose principal's credential
    # is missing fails naming the variable. `stack:env` prints all four (an operator's shell).
    iceberg_admin_credential: SecretStr | None = None
    iceberg_ingest_credential: SecretStr | None = None
    iceberg_maintain_credential: SecretStr | None = None
    iceberg_query_credential: SecretStr | None = None

    @field_validator("schema_registry_url")
    @classmethod
    def _registry_urls(cls, value: str) -> str:
        return ",".join(registry_urls(value))

    @property
    def schema_registry_urls(self) -> tuple[str, ...]:
        """Every registry instance's URL, in the order clients try them."""
        return registry_urls(self.schema_registry_url)

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

    def catalog_credential(self, principal: CatalogPrincipal) -> str:
        """`principal`'s catalog credential (`client_id:secret`).

        Raises:
            ValueError: this process was not given it (the message names the variable).
        """
        value: SecretStr | None = getattr(self, principal.field)
        if value is None:
            raise ValueError(
                f"{principal.env_name} is not set: this command acts as the catalog's "
                f"{principal.value} principal (`task stack:env` prints its credential)"
            )
        return value.get_secret_value()

    def as_env(self) -> dict[str, str]:
        """These endpoints as `K2_*` variables, secrets revealed: for child processes only.

        Unset optional fields are left out (never written as the string "None").
        """
        env: dict[str, str] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if value is None:
                continue
            text = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
            env[ENV_PREFIX + name.upper()] = text
        return env


def registry_urls(value: str) -> tuple[str, ...]:
    """The URLs of `K2_SCHEMA_REGISTRY_URL`: one, or several separated by commas.

    Spaces around each URL are ignored. Every entry must be an http(s) URL with a host, and all
    must carry the same userinfo. Errors name the entry by position, never its text (it holds
    the registry password).
    """
    urls = tuple(part.strip() for part in value.split(","))
    userinfo: set[str] = set()
    for position, url in enumerate(urls, start=1):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"{ENV_PREFIX}SCHEMA_REGISTRY_URL entry {position} of {len(urls)} is not an "
                "http(s) URL with a host (several URLs are separated by commas)"
            )
        userinfo.add(parts.netloc.rpartition("@")[0])
    if len(userinfo) > 1:
        raise ValueError(
            f"{ENV_PREFIX}SCHEMA_REGISTRY_URL: every URL must carry the same credentials"
        )
    return urls


def endpoint_env_names() -> tuple[str, ...]:
    """The required `K2_*` variable names (where the services are), in declaration order."""
    return tuple(
        ENV_PREFIX + name.upper()
        for name, field in Endpoints.model_fields.items()
        if field.is_required()
    )


def operator_env_names() -> tuple[str, ...]:
    """Every `K2_*` endpoint name an operator's shell gets (`stack:env`, stack outputs): the
    required ones, the catalog database and every catalog principal's credential."""
    return (*endpoint_env_names(), ENV_PREFIX + "POSTGRES_DSN", *catalog_credential_env_names())


def catalog_credential_env_names() -> tuple[str, ...]:
    """The optional `K2_ICEBERG_<PRINCIPAL>_CREDENTIAL` names, one per catalog principal."""
    return tuple(principal.env_name for principal in CatalogPrincipal)


SECRET_ENDPOINT_FIELDS = frozenset(
    name
    for name, field in Endpoints.model_fields.items()
    if field.annotation in (SecretStr, SecretStr | None)
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

    def python_client_config(self) -> dict[str, str]:
        """The same authentication in kafka-python's names (k2.ingest.leave; empty if PLAINTEXT)."""
        if self.sasl_password is None:
            return {}
        return {
            "security_protocol": self.security_protocol,
            "sasl_mechanism": str(self.sasl_mechanism),
            "sasl_plain_username": str(self.sasl_username),
            "sasl_plain_password": self.sasl_password.get_secret_value(),
        }

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
