"""Rotating one principal's catalog secret: what the README's procedure relies on.

A second catalog server is started on the run's stack (same PostgreSQL, same S3, same signing
key, its own port) with the ingest principal's secret rotated, as the stack's catalog runs after
`task stack:down`/`stack:up` with a new secret in its manifest. Tokens are bound to the secret
they were issued for: the ingest principal's outstanding token and old secret stop working at
once, every other principal's keep working, the new secret works, and the tables are untouched.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from k2.catalog import load_catalog
from k2.net import free_port
from k2.settings import CatalogPrincipal, Endpoints
from k2stack.local import health, processes
from k2stack.local.context import StackContext
from k2stack.local.services.iceberg_rest import IcebergRestLauncher
from k2stack.local.stack import LocalStack
from k2stack.topology import SERVICES, ServiceName

pytestmark = [pytest.mark.integration, pytest.mark.local_stack]

CATALOG = ServiceName.ICEBERG_REST


def _token(base: str, credential: str) -> httpx.Response:
    client_id, _, secret = credential.partition(":")
    return httpx.post(
        f"{base}/v1/oauth/tokens",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
        timeout=10,
    )


def _get(base: str, token: str) -> int:
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.get(f"{base}/v1/namespaces", headers=headers, timeout=10).status_code


@pytest.fixture
def rotated(stack: Endpoints, stack_dir: Path | None, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(base URL, new ingest secret) of a catalog whose ingest secret was rotated."""
    if stack_dir is None:
        pytest.fail("needs the run's own local stack (marker local_stack)")
    ctx = LocalStack(stack_dir, log=lambda _: None).context()
    new_secret = secrets.token_urlsafe(24)
    credentials = ctx.credentials.model_copy(
        update={"catalog_secrets": {**ctx.credentials.catalog_secrets, "ingest": new_secret}}
    )
    second: StackContext = dataclasses.replace(
        ctx,
        state_dir=tmp_path / "state",
        credentials=credentials,
        ports={**ctx.ports, CATALOG: {"http": free_port()}},
    )
    launcher = IcebergRestLauncher()
    launcher.prepare(second)
    pid_file = tmp_path / "catalog.pid"
    log_file = tmp_path / "catalog.log"
    processes.start(launcher.command(second), log_file, pid_file)
    try:
        health.wait_healthy(
            SERVICES[CATALOG].health,
            CATALOG,
            second,
            alive=lambda: processes.running(pid_file) is not None,
            log_file=log_file,
        )
        yield f"http://127.0.0.1:{second.port(CATALOG, 'http')}", new_secret
    finally:
        processes.stop(pid_file)


def test_rotating_a_secret_revokes_only_that_principals_tokens(
    stack: Endpoints, rotated: tuple[str, str], unique: str
) -> None:
    base, new_secret = rotated
    old_ingest = stack.catalog_credential(CatalogPrincipal.INGEST)
    query = stack.catalog_credential(CatalogPrincipal.QUERY)
    # Tokens issued by the stack's catalog before the rotation (same signing key).
    ingest_token = _token(stack.iceberg_catalog_uri, old_ingest).json()["access_token"]
    query_token = _token(stack.iceberg_catalog_uri, query).json()["access_token"]
    with load_catalog(stack, CatalogPrincipal.ADMIN) as admin:
        admin.create_namespace(f"{unique}rot")
    try:
        assert _get(base, ingest_token) == 401  # the rotated principal's token: revoked
        assert _token(base, old_ingest).status_code == 401  # and its old secret
        assert _get(base, query_token) == 200  # every other principal: untouched
        fresh = _token(base, f"{CatalogPrincipal.INGEST.client_id}:{new_secret}")
        assert fresh.status_code == 200
        # Same catalog database behind both servers: nothing was lost by the rotation.
        listed = httpx.get(
            f"{base}/v1/namespaces",
            headers={"Authorization": f"Bearer {fresh.json()['access_token']}"},
            timeout=10,
        ).json()["namespaces"]
        assert [f"{unique}rot"] in listed
    finally:
        with load_catalog(stack, CatalogPrincipal.ADMIN) as admin:
            admin.drop_namespace(f"{unique}rot")
