"""k2.catalog builds every catalog client from the K2_* endpoints, and fails as a K2Error."""

from __future__ import annotations

import socket

import pytest
from pydantic import SecretStr

from k2.catalog import CatalogUnavailableError, catalog_properties, load_catalog
from k2.errors import ConfigError, K2Error
from k2.settings import CatalogPrincipal, Endpoints

QUERY_CREDENTIAL = "k2-query:query-secret"


def _endpoints(catalog_uri: str = "http://127.0.0.1:18181") -> Endpoints:
    return Endpoints(
        kafka_bootstrap_servers="127.0.0.1:19092",
        schema_registry_url="http://127.0.0.1:18081/apis/ccompat/v7",
        iceberg_catalog_uri=catalog_uri,
        s3_endpoint="http://127.0.0.1:18333",
        s3_access_key_id="access",
        s3_secret_access_key=SecretStr("secret"),
        postgres_dsn=SecretStr("postgresql://k2:pw@127.0.0.1:15432/iceberg_catalog"),
        prometheus_url="http://127.0.0.1:19090",
        iceberg_query_credential=SecretStr(QUERY_CREDENTIAL),
    )


def test_properties_come_from_the_endpoints() -> None:
    assert catalog_properties(_endpoints(), CatalogPrincipal.QUERY) == {
        "type": "rest",
        "uri": "http://127.0.0.1:18181",
        # pyiceberg's standard OAuth2 manager: renews the token before `expires_in` runs out.
        "auth": {
            "type": "oauth2",
            "oauth2": {
                "client_id": "k2-query",
                "client_secret": "query-secret",
                "token_url": "http://127.0.0.1:18181/v1/oauth/tokens",
                "scope": "catalog",
            },
        },
        "s3.endpoint": "http://127.0.0.1:18333",
        "s3.access-key-id": "access",
        "s3.secret-access-key": "secret",
        "s3.region": "us-east-1",
        "s3.path-style-access": "true",
    }


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_unreachable_catalog_is_a_k2_error() -> None:
    uri = f"http://127.0.0.1:{_closed_port()}"

    with pytest.raises(CatalogUnavailableError, match=uri) as raised:
        load_catalog(_endpoints(uri))

    assert isinstance(raised.value, K2Error)
    assert raised.value.__cause__ is not None


def test_a_principal_without_a_credential_fails_naming_its_variable() -> None:
    with pytest.raises(ConfigError, match="K2_ICEBERG_ADMIN_CREDENTIAL is not set") as raised:
        load_catalog(_endpoints(), CatalogPrincipal.ADMIN)
    assert "query-secret" not in str(raised.value)


def test_unset_credentials_are_not_written_back_as_env() -> None:
    env = _endpoints().as_env()
    assert env["K2_ICEBERG_QUERY_CREDENTIAL"] == QUERY_CREDENTIAL
    assert "K2_ICEBERG_ADMIN_CREDENTIAL" not in env
    assert "query-secret" not in repr(_endpoints())
