"""The Iceberg catalog's principals in the Pulumi program, under Pulumi's mocks.

Every stack authenticates its catalog: the catalog container gets the signing key and every
principal's secret (as secret env, turned into `K2_CATALOG_AUTH_*` by `k2-stack serve`); each
K2 container gets only the credential of the principal its command acts as; the outputs carry
all four, as secrets. What the server does with them is tested against the real server
(tests/integration/test_catalog_auth.py).
"""

from __future__ import annotations

from functools import cache

import pytest

from k2.errors import ConfigError
from k2.settings import CatalogPrincipal, catalog_credential_env_names
from k2stack.local.services.iceberg_rest import catalog_env
from k2stack.serve import ServeSettings, container_context
from tests.infra.infra_harness import (
    SECRETS,
    StackRun,
    env_of,
    is_secret,
    run_stack,
    stack_config,
)

STACKS = ("dev", "ci", "cluster")


def secret_of(principal: CatalogPrincipal) -> str:
    return SECRETS[f"k2:catalog{principal.value.capitalize()}Secret"]


def credential(principal: CatalogPrincipal) -> str:
    return f"{principal.client_id}:{secret_of(principal)}"


@cache
def run(stack: str) -> StackRun:
    return run_stack(stack)


def container(stack: str, service: str) -> dict[str, str]:
    prefix = next(c for c in run(stack).containers() if c.endswith("-postgres")).removesuffix(
        "-postgres"
    )
    return env_of(run(stack).containers()[f"{prefix}-{service}"])


@pytest.mark.parametrize("stack", STACKS)
def test_catalog_container_gets_the_key_and_every_secret_as_secret_env(stack: str) -> None:
    prefix = next(c for c in run(stack).containers() if c.endswith("-iceberg-rest"))
    assert is_secret(run(stack).containers()[prefix].inputs["envs"])
    env = container(stack, "iceberg-rest")
    assert env["K2_SERVE_CATALOG_TOKEN_KEY"] == SECRETS["k2:catalogTokenKey"]
    for principal in CatalogPrincipal:
        assert env[f"K2_SERVE_CATALOG_{principal.name}_SECRET"] == secret_of(principal)


@pytest.mark.parametrize("stack", STACKS)
def test_serve_turns_the_container_env_into_the_servers_auth_config(
    stack: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in container(stack, "iceberg-rest").items():
        monkeypatch.setenv(name, value)
    env = catalog_env(container_context(ServeSettings()))
    assert env["K2_CATALOG_AUTH_TOKEN_KEY"] == SECRETS["k2:catalogTokenKey"]
    for principal in CatalogPrincipal:
        assert env[f"K2_CATALOG_AUTH_{principal.name}"] == credential(principal)


@pytest.mark.parametrize("stack", STACKS)
def test_each_k2_container_holds_only_its_principals_credential(stack: str) -> None:
    workers = [c for c in run(stack).containers() if "-ingest-" in c]
    assert workers
    for name in workers:
        env = env_of(run(stack).containers()[name])
        held = {k for k in env if k in catalog_credential_env_names()}
        assert held == {CatalogPrincipal.INGEST.env_name}, name
        assert env[CatalogPrincipal.INGEST.env_name] == credential(CatalogPrincipal.INGEST)
    bootstrap = container(stack, "bootstrap")
    held = {k for k in bootstrap if k in catalog_credential_env_names()}
    assert held == {CatalogPrincipal.ADMIN.env_name}
    assert bootstrap[CatalogPrincipal.ADMIN.env_name] == credential(CatalogPrincipal.ADMIN)


def test_the_acl_job_holds_only_the_query_credential() -> None:
    env = container("cluster", "kafka-acls")
    held = {k for k in env if k in catalog_credential_env_names()}
    assert held == {CatalogPrincipal.QUERY.env_name}


@pytest.mark.parametrize("stack", STACKS)
def test_outputs_carry_every_principals_credential_as_a_secret(stack: str) -> None:
    exports = run(stack).exports
    for principal in CatalogPrincipal:
        assert exports[principal.env_name] == credential(principal)
        assert principal.env_name in run(stack).secret_exports


def test_a_stack_without_catalog_secrets_is_refused_naming_them() -> None:
    config = {k: v for k, v in stack_config("dev").items() if not k.startswith("k2:catalog")}
    with pytest.raises(ConfigError) as caught:
        run_stack("dev", config)
    for key in (
        "catalogTokenKey",
        "catalogAdminSecret",
        "catalogIngestSecret",
        "catalogMaintainSecret",
        "catalogQuerySecret",
    ):
        assert f"k2:{key} is required" in str(caught.value)


def test_catalog_secrets_must_be_pulumi_secrets() -> None:
    with pytest.raises(ConfigError) as caught:
        run_stack(
            "dev",
            stack_config("dev"),
            [k for k in SECRETS if k != "k2:catalogAdminSecret"],
        )
    assert "k2:catalogAdminSecret must be set as a secret" in str(caught.value)
