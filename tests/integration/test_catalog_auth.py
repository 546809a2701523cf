"""The Iceberg REST catalog requires authentication, and each principal can do its job only.

Against the real catalog server of the stack (K2's wrapper of Iceberg's RESTCatalogServer):
the OAuth2 token endpoint, 401 on every route without or with a bad token, 403 for a
principal outside its rights, and standard pyiceberg clients (`credential=...`, no K2 code).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import timedelta

import httpx
import pyarrow as pa
import pytest
from pydantic import SecretStr
from pyiceberg.catalog import Catalog
from pyiceberg.catalog import load_catalog as pyiceberg_catalog
from pyiceberg.exceptions import ForbiddenError
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.types import LongType, NestedField, StringType

from k2.catalog import CatalogAuthError, load_catalog, token_url
from k2.maintain import CompactionPolicy, compact, expire_snapshots
from k2.settings import CatalogPrincipal, Endpoints
from k2stack.catalog_auth import fetch_token

pytestmark = pytest.mark.integration

ADMIN, INGEST, MAINTAIN, QUERY = (
    CatalogPrincipal.ADMIN,
    CatalogPrincipal.INGEST,
    CatalogPrincipal.MAINTAIN,
    CatalogPrincipal.QUERY,
)
SCHEMA = Schema(
    NestedField(1, "trade_id", StringType(), required=False),
    NestedField(2, "size", LongType(), required=False),
)
NS = "{ns}"
TABLE = "{ns}/tables/{table}"
VIEW = "{ns}/views/{table}"
# Every route of the catalog (Iceberg 1.10's RESTCatalogAdapter), as (method, path after /v1/).
ROUTES = (
    ("GET", "config"),
    ("GET", "namespaces"),
    ("POST", "namespaces"),
    ("GET", f"namespaces/{NS}"),
    ("HEAD", f"namespaces/{NS}"),
    ("DELETE", f"namespaces/{NS}"),
    ("POST", f"namespaces/{NS}/properties"),
    ("GET", f"namespaces/{NS}/tables"),
    ("POST", f"namespaces/{NS}/tables"),
    ("POST", f"namespaces/{NS}/register"),
    ("GET", f"namespaces/{TABLE}"),
    ("HEAD", f"namespaces/{TABLE}"),
    ("POST", f"namespaces/{TABLE}"),
    ("DELETE", f"namespaces/{TABLE}"),
    ("POST", f"namespaces/{TABLE}/metrics"),
    ("POST", "tables/rename"),
    ("POST", "transactions/commit"),
    ("GET", f"namespaces/{NS}/views"),
    ("POST", f"namespaces/{NS}/views"),
    ("GET", f"namespaces/{VIEW}"),
    ("HEAD", f"namespaces/{VIEW}"),
    ("POST", f"namespaces/{VIEW}"),
    ("DELETE", f"namespaces/{VIEW}"),
    ("POST", "views/rename"),
)


def _token(stack: Endpoints, principal: CatalogPrincipal) -> str:
    return fetch_token(stack.iceberg_catalog_uri, stack.catalog_credential(principal))


def _call(stack: Endpoints, method: str, path: str, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    body = None if method in ("GET", "HEAD", "DELETE") else {}
    return httpx.request(
        method, f"{stack.iceberg_catalog_uri}/v1/{path}", json=body, headers=headers, timeout=10
    )


@pytest.fixture
def admin(stack: Endpoints) -> Iterator[Catalog]:
    with load_catalog(stack, ADMIN) as catalog:
        yield catalog


@pytest.fixture
def table(admin: Catalog, unique: str) -> Iterator[Table]:
    namespace = f"{unique}auth"
    admin.create_namespace(namespace)
    created = admin.create_table((namespace, "trades"), schema=SCHEMA)
    yield created
    for identifier in admin.list_tables(namespace):
        admin.purge_table(identifier)
    admin.drop_namespace(namespace)


@pytest.fixture
def catalog_as(stack: Endpoints) -> Iterator[Callable[[CatalogPrincipal], Catalog]]:
    """A catalog client acting as a principal (closed at the end)."""
    with ExitStack() as opened:
        yield lambda principal: opened.enter_context(load_catalog(stack, principal))


def _rows(table: Table, ids: list[str]) -> pa.Table:
    rows = [{"trade_id": i, "size": 1} for i in ids]
    return pa.Table.from_pylist(rows, schema=table.schema().as_arrow())


# --- authentication -------------------------------------------------------------------------


def test_every_route_refuses_a_missing_or_bad_token_with_the_spec_error(
    stack: Endpoints, table: Table
) -> None:
    namespace, name = table.name()
    good = _token(stack, ADMIN)
    principal, expiry, nonce, signature = good.split(".")
    forged = {
        "none": None,
        "garbage": "not-a-token",
        "tampered principal": f"{principal}X.{expiry}.{nonce}.{signature}",
        "tampered expiry": f"{principal}.{int(expiry) + 3600}.{nonce}.{signature}",
        "bad signature": f"{principal}.{expiry}.{nonce}.{signature[::-1]}",
    }
    for method, pattern in ROUTES:
        path = pattern.format(ns=namespace, table=name)
        for kind, token in forged.items():
            response = _call(stack, method, path, token)
            assert response.status_code == 401, (method, path, kind)
            if method != "HEAD":
                error = response.json()["error"]
                assert error["code"] == 401 and error["type"] == "NotAuthorizedException"
    # The same token, untampered, gets through (the table is still there afterwards).
    assert _call(stack, "GET", f"namespaces/{namespace}/tables/{name}", good).status_code == 200


def test_token_endpoint_follows_the_oauth2_client_credentials_flow(stack: Endpoints) -> None:
    client_id, _, secret = stack.catalog_credential(QUERY).partition(":")
    url = token_url(stack)
    granted = httpx.post(
        url,
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": secret,
            "scope": "catalog",
        },
        timeout=10,
    )
    assert granted.status_code == 200
    body = granted.json()
    assert body["token_type"] == "bearer"
    assert body["issued_token_type"] == "urn:ietf:params:oauth:token-type:access_token"
    assert body["expires_in"] > 60
    # HTTP Basic client authentication (RFC 6749 2.3.1) works as well as the form fields.
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    by_header = httpx.post(
        url,
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
        timeout=10,
    )
    assert by_header.status_code == 200
    # A token can be exchanged for a fresh one (how Java clients refresh).
    exchanged = httpx.post(
        url,
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": body["access_token"],
            "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
        },
        timeout=10,
    )
    assert exchanged.status_code == 200
    for data in (
        {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret + "x"},
        {"grant_type": "client_credentials", "client_id": "k2-nobody", "client_secret": secret},
        {"grant_type": "client_credentials", "client_id": "k2-admin", "client_secret": secret},
        {"grant_type": "client_credentials"},
        {"grant_type": "urn:ietf:params:oauth:grant-type:token-exchange", "subject_token": "x"},
    ):
        refused = httpx.post(url, data=data, timeout=10)
        assert refused.status_code == 401, data
        assert refused.json()["error"] == "invalid_client"
    unsupported = httpx.post(url, data={"grant_type": "password"}, timeout=10)
    assert unsupported.status_code == 400
    assert unsupported.json()["error"] == "unsupported_grant_type"


def test_a_standard_pyiceberg_client_authenticates_with_its_credential(
    stack: Endpoints, table: Table
) -> None:
    """No K2 code: pyiceberg's own `credential` property (the legacy OAuth2 flow)."""
    catalog = pyiceberg_catalog(
        "standard",
        type="rest",
        uri=stack.iceberg_catalog_uri,
        credential=stack.catalog_credential(QUERY),
        scope="catalog",
        **{"oauth2-server-uri": token_url(stack)},
    )
    namespace, _ = table.name()
    assert catalog.list_tables(namespace) == [table.name()]


def test_a_wrong_credential_is_a_k2_error_naming_the_variable(stack: Endpoints) -> None:
    wrong = stack.model_copy(update={"iceberg_query_credential": SecretStr("k2-query:x")})
    with pytest.raises(CatalogAuthError, match="K2_ICEBERG_QUERY_CREDENTIAL"):
        load_catalog(wrong, QUERY)


# --- authorisation --------------------------------------------------------------------------


def test_query_reads_and_can_neither_commit_evolve_nor_drop(
    catalog_as: Callable[[CatalogPrincipal], Catalog], admin: Catalog, table: Table
) -> None:
    table.append(_rows(table, ["a", "b"]))
    catalog = catalog_as(QUERY)
    as_query = catalog.load_table(table.name())
    assert as_query.scan().to_arrow().num_rows == 2
    with pytest.raises(ForbiddenError):
        as_query.append(_rows(as_query, ["c"]))
    with pytest.raises(ForbiddenError), as_query.transaction() as tx:
        tx.set_properties({"k2.offset.trades.0": "1"})
    with pytest.raises(ForbiddenError), as_query.update_schema() as update:
        update.add_column("venue", StringType())
    with pytest.raises(ForbiddenError):
        catalog.drop_table(table.name())
    with pytest.raises(ForbiddenError):
        catalog.create_namespace(f"{table.name()[0]}_more")
    assert admin.load_table(table.name()).scan().to_arrow().num_rows == 2


def test_ingest_appends_sets_k2_properties_and_adds_columns_but_cannot_drop(
    catalog_as: Callable[[CatalogPrincipal], Catalog], admin: Catalog, table: Table
) -> None:
    catalog = catalog_as(INGEST)
    as_ingest = catalog.load_table(table.name())
    with as_ingest.transaction() as tx:  # exactly what the ingest sink commits
        tx.append(_rows(as_ingest, ["a", "b"]))
        tx.set_properties({"k2.offset.trades.0": "2", "commit.retry.num-retries": "0"})
    with as_ingest.update_schema() as update:  # a new writer schema's extra column
        update.add_column("venue", StringType())
    first = as_ingest.current_snapshot()
    assert first is not None
    as_ingest.append(_rows(as_ingest, ["c"]))

    with pytest.raises(ForbiddenError):
        catalog.drop_table(table.name())
    with pytest.raises(ForbiddenError):
        catalog.create_table((table.name()[0], "other"), schema=SCHEMA)
    with pytest.raises(ForbiddenError), as_ingest.transaction() as tx:
        tx.set_properties({"write.format.default": "orc"})
    with pytest.raises(ForbiddenError), as_ingest.update_schema() as update:
        update.delete_column("size")
    with pytest.raises(ForbiddenError):  # rewinding the table: a rollback
        as_ingest.manage_snapshots().set_current_snapshot(first.snapshot_id).commit()
    with pytest.raises(ForbiddenError):  # deleting rows
        as_ingest.delete("trade_id == 'a'")
    with pytest.raises(ForbiddenError):
        as_ingest.maintenance.expire_snapshots().by_id(first.snapshot_id).commit()

    kept = admin.load_table(table.name())
    assert sorted(kept.scan().to_arrow()["trade_id"].to_pylist()) == ["a", "b", "c"]
    assert kept.properties["k2.offset.trades.0"] == "2"
    assert "venue" in kept.schema().column_names


def test_maintain_rewrites_and_expires_but_cannot_append_delete_or_drop(
    stack: Endpoints,
    catalog_as: Callable[[CatalogPrincipal], Catalog],
    admin: Catalog,
    table: Table,
) -> None:
    for ids in (["a"], ["b"], ["c"]):
        table.append(_rows(table, ids))
    catalog = catalog_as(MAINTAIN)
    as_maintain = catalog.load_table(table.name())
    # Exactly what `k2 maintain` does: compaction (a row-preserving overwrite), then expiry.
    report = compact(as_maintain, CompactionPolicy(min_files=2))
    assert report.rewritten_files == 3
    assert expire_snapshots(as_maintain, older_than=timedelta(0), retain_last=1) > 0

    with pytest.raises(ForbiddenError):
        as_maintain.append(_rows(as_maintain, ["d"]))
    with pytest.raises(ForbiddenError):  # a rewrite that loses rows
        as_maintain.delete("trade_id == 'a'")
    with pytest.raises(ForbiddenError):
        catalog.drop_table(table.name())
    # Expiring the snapshot `main` points at would empty the table: refused by the server
    # (pyiceberg itself would not send it, so send the commit by hand).
    current = as_maintain.current_snapshot()
    assert current is not None
    namespace, name = table.name()
    response = httpx.post(
        f"{stack.iceberg_catalog_uri}/v1/namespaces/{namespace}/tables/{name}",
        json={"updates": [{"action": "remove-snapshots", "snapshot-ids": [current.snapshot_id]}]},
        headers={"Authorization": f"Bearer {_token(stack, MAINTAIN)}"},
        timeout=10,
    )
    assert response.status_code == 403
    assert response.json()["error"]["type"] == "ForbiddenException"

    kept = admin.load_table(table.name())
    assert sorted(kept.scan().to_arrow()["trade_id"].to_pylist()) == ["a", "b", "c"]
    assert len(list(kept.scan().plan_files())) == 1
    assert len(kept.snapshots()) == 1


def test_admin_can_drop(stack: Endpoints, admin: Catalog, table: Table) -> None:
    admin.drop_table(table.name())
    assert not admin.table_exists(table.name())
