"""The Iceberg REST launcher's configuration, checked without starting anything."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from k2stack.local.context import StackContext
from k2stack.local.services.iceberg_rest import JAVA_DIR, POM, WRAPPER_SOURCE, catalog_env
from k2stack.topology import SERVICES, Credentials, ServiceName

MAVEN_NS = {"m": "http://maven.apache.org/POM/4.0.0"}


def _ctx(tmp_path: Path) -> StackContext:
    return StackContext(
        state_dir=tmp_path / "state",
        cache_dir=tmp_path / "cache",
        ports={
            ServiceName.POSTGRES: {"sql": 5001},
            ServiceName.SEAWEEDFS: {"s3": 5002},
            ServiceName.ICEBERG_REST: {"http": 5003},
        },
        credentials=Credentials(
            postgres_password="pg-pw",
            s3_access_key_id="key-id",
            s3_secret_access_key="key",
            catalog_token_key="token-key",
            catalog_secrets={"admin": "admin-secret", "query": "query-secret"},
        ),
    )


def test_pom_resolves_the_topology_version() -> None:
    """The version is written in the topology and the pom: they must not drift apart."""
    version = ET.parse(POM).getroot().findtext("m:properties/m:iceberg.version", None, MAVEN_NS)
    assert version == SERVICES[ServiceName.ICEBERG_REST].version
    assert SERVICES[ServiceName.ICEBERG_REST].image.endswith(f":{version}")


def test_wrapper_sources_ship_beside_the_pom() -> None:
    assert WRAPPER_SOURCE.is_file()
    names = {path.name for path in JAVA_DIR.glob("*.java")}
    assert {"CatalogAuthFilter.java", "CatalogPolicy.java", "CatalogTokens.java"} <= names


def test_catalog_env_points_at_the_stack(tmp_path: Path) -> None:
    env = catalog_env(_ctx(tmp_path))

    assert env == {
        "AWS_REGION": "us-east-1",
        "CATALOG_CLIENT_REGION": "us-east-1",
        "CATALOG_URI": "jdbc:postgresql://127.0.0.1:5001/iceberg_catalog",
        "CATALOG_JDBC_USER": "k2",
        "CATALOG_JDBC_PASSWORD": "pg-pw",
        "CATALOG_WAREHOUSE": "s3://warehouse/",
        "CATALOG_IO__IMPL": "org.apache.iceberg.aws.s3.S3FileIO",
        "CATALOG_S3_ENDPOINT": "http://127.0.0.1:5002",
        "CATALOG_S3_PATH__STYLE__ACCESS": "true",
        "CATALOG_S3_ACCESS__KEY__ID": "key-id",
        "CATALOG_S3_SECRET__ACCESS__KEY": "key",
        "CATALOG_REST_PORT": "5003",
        # The principals the stack has (a missing one cannot log in).
        "K2_CATALOG_AUTH_TOKEN_KEY": "token-key",
        "K2_CATALOG_AUTH_ADMIN": "k2-admin:admin-secret",
        "K2_CATALOG_AUTH_QUERY": "k2-query:query-secret",
    }
