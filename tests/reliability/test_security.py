"""Security of the local stack: the registry requires credentials; no secret leaks.

Loopback-only binding of every service, and S3 and PostgreSQL refusing wrong credentials, are
tested in tests/integration/test_stack_local.py (not repeated here).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from k2.catalog import token_url
from k2.serde.serializer import registry_client
from k2.settings import CatalogPrincipal, Endpoints
from k2stack.catalog_auth import fetch_token

pytestmark = [pytest.mark.reliability, pytest.mark.integration]

REPO = Path(__file__).resolve().parents[2]
HTTP_UNAUTHORIZED = 401
MIN_SECRET_LENGTH = 8  # shorter strings would match by chance


def _without_userinfo(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.hostname + f":{parts.port}"))


def _registry_auth(stack: Endpoints) -> tuple[str, str]:
    parts = urlsplit(stack.schema_registry_url)
    if not (parts.username and parts.password):
        pytest.fail("K2_SCHEMA_REGISTRY_URL carries no credentials: the registry is open")
    return parts.username, parts.password


def test_registry_refuses_missing_and_wrong_credentials(stack: Endpoints) -> None:
    user, password = _registry_auth(stack)
    bare = _without_userinfo(stack.schema_registry_url)
    native = bare.replace("/apis/ccompat/v7", "/apis/registry/v3/system/info")
    for url in (f"{bare}/subjects", f"{bare}/config", native):
        assert httpx.get(url, timeout=10).status_code == HTTP_UNAUTHORIZED, url
        wrong = httpx.get(url, timeout=10, auth=(user, password + "x"))
        assert wrong.status_code == HTTP_UNAUTHORIZED, url
        assert httpx.get(url, timeout=10, auth=(user, password)).status_code == 200, url
    assert (
        httpx.get(f"{bare}/subjects", timeout=10, auth=("nobody", password)).status_code
        == HTTP_UNAUTHORIZED
    )


def test_registry_clients_need_the_url_credentials(stack: Endpoints) -> None:
    # K2's one factory: credentials travel as URL userinfo (basic.auth.credentials.source=URL).
    with registry_client(stack.schema_registry_url) as client:
        assert isinstance(client.get_subjects(), list)
    anon = SchemaRegistryClient({"url": _without_userinfo(stack.schema_registry_url)})
    with anon, pytest.raises(SchemaRegistryError) as refused:
        anon.get_subjects()
    assert refused.value.http_status_code == HTTP_UNAUTHORIZED


def _secrets(stack: Endpoints) -> dict[str, str]:
    dsn = urlsplit(stack.postgres_dsn.get_secret_value())
    found = {
        "postgres password": dsn.password or "",
        "S3 secret key": stack.s3_secret_access_key.get_secret_value(),
        "registry password": urlsplit(stack.schema_registry_url).password or "",
    }
    for principal in CatalogPrincipal:
        found[f"catalog {principal.value} secret"] = stack.catalog_credential(principal).partition(
            ":"
        )[2]
    for name, value in found.items():
        assert len(value) >= MIN_SECRET_LENGTH, f"{name} is missing or too short to scan for"
    return found


def _leaks(files: list[Path], secrets: dict[str, str]) -> list[str]:
    found = []
    needles = {name: value.encode() for name, value in secrets.items()}
    for path in files:
        try:
            data = path.read_bytes()
        except OSError:
            continue
        found.extend(f"{name} in {path}" for name, needle in needles.items() if needle in data)
    return found


@pytest.mark.local_stack
def test_no_secret_in_any_log_of_the_stack(stack: Endpoints, stack_dir: Path | None) -> None:
    if stack_dir is None:
        pytest.skip("bring-your-own stack: its logs are not here")
    secrets = _secrets(stack)
    # Touch the registry with good and bad credentials first, so its log has something to say.
    user, password = _registry_auth(stack)
    bare = _without_userinfo(stack.schema_registry_url)
    httpx.get(f"{bare}/subjects", timeout=10, auth=(user, password))
    httpx.get(f"{bare}/subjects", timeout=10, auth=(user, password[::-1]))
    # ... and the catalog: a token request, a refused one, a refused route.
    secrets |= _touch_catalog(stack)
    logs = [p for p in stack_dir.rglob("*") if p.is_file() and _is_log(p)]
    run_log = stack_dir.parent / (stack_dir.name + ".log")
    if run_log.is_file():
        logs.append(run_log)
    assert logs, f"no log files under {stack_dir}"
    assert _leaks(logs, secrets) == []


def _touch_catalog(stack: Endpoints) -> dict[str, str]:
    """Use the catalog with good and bad credentials; return the token it issued (a secret
    too: a bearer token is as good as the credential until it expires)."""
    credential = stack.catalog_credential(CatalogPrincipal.QUERY)
    token = fetch_token(stack.iceberg_catalog_uri, credential)
    client_id = credential.partition(":")[0]
    httpx.post(
        token_url(stack),
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": "x"},
        timeout=10,
    )
    # A commit the query principal may not make: the refusal is logged, the token is not.
    httpx.post(
        f"{stack.iceberg_catalog_uri}/v1/namespaces",
        json={"namespace": ["nope"]},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    return {"catalog bearer token": token}


def _is_log(path: Path) -> bool:
    return path.suffix in {".log", ".out", ".err"} or "logs" in path.parts


def test_no_secret_in_the_repository(stack: Endpoints) -> None:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout
    files = [REPO / name for name in listed.decode().split("\0") if name]
    assert len(files) > 50
    assert _leaks(files, _secrets(stack)) == []
