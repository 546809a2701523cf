"""Iceberg's own Java client (what Spark's Iceberg catalog runs) authenticates with nothing but
the standard `credential` property, and gets the same answers as pyiceberg: an admin creates and
drops, the query principal is refused (403), a wrong secret cannot even start (401)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from k2.settings import CatalogPrincipal, Endpoints
from k2stack.local.context import default_cache_dir
from k2stack.local.install import java_executable, maven_classpath
from k2stack.local.services.iceberg_rest import POM
from k2stack.topology import SERVICES, ServiceName

pytestmark = pytest.mark.integration

SOURCE = Path(__file__).with_name("java") / "CatalogJavaClient.java"


@pytest.fixture(scope="module")
def java_client(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """`java -cp ... CatalogJavaClient`, compiled against the catalog's own Iceberg jars."""
    version = SERVICES[ServiceName.ICEBERG_REST].version
    classpath = maven_classpath(default_cache_dir(), f"iceberg-rest-{version}", POM)
    classes = tmp_path_factory.mktemp("java-client")
    java = Path(java_executable())
    javac = str(java.with_name("javac"))
    subprocess.run(
        [javac, "-nowarn", "-d", str(classes), "-cp", f"{classpath}/*", str(SOURCE)],
        check=True,
        capture_output=True,
    )
    quiet = "-Dorg.slf4j.simpleLogger.defaultLogLevel=error"
    return [str(java), quiet, "-cp", f"{classes}:{classpath}/*", "CatalogJavaClient"]


def _run(java_client: list[str], stack: Endpoints, credential: str, namespace: str) -> str:
    done = subprocess.run(
        [*java_client, stack.iceberg_catalog_uri, credential, namespace],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.stdout + done.stderr


def test_admin_creates_and_drops(java_client: list[str], stack: Endpoints, unique: str) -> None:
    out = _run(java_client, stack, stack.catalog_credential(CatalogPrincipal.ADMIN), unique + "j")
    assert "created" in out and "dropped" in out, out


def test_query_is_refused_a_namespace(
    java_client: list[str], stack: Endpoints, unique: str
) -> None:
    out = _run(java_client, stack, stack.catalog_credential(CatalogPrincipal.QUERY), unique + "j")
    assert "listed" in out and "refused ForbiddenException" in out, out


def test_a_wrong_secret_is_not_authorized(
    java_client: list[str], stack: Endpoints, unique: str
) -> None:
    out = _run(java_client, stack, "k2-query:not-the-secret", unique + "j")
    assert "NotAuthorizedException" in out and "listed" not in out, out
