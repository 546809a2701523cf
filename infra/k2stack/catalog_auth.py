"""The Iceberg catalog's principals, as the stack generates, serves and probes them.

The catalog server (`local/java/CatalogAuthFilter.java`) reads `K2_CATALOG_AUTH_*` variables:
a signing key and one `k2-<principal>:<secret>` credential per `CatalogPrincipal`; it refuses to
start without the key and the admin credential. K2's clients get the same credentials as
`K2_ICEBERG_<PRINCIPAL>_CREDENTIAL` (`k2.settings`, `k2stack.topology.endpoints`).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Final

import httpx

from k2.settings import CATALOG_TOKEN_PATH, CatalogPrincipal
from k2stack.topology import Credentials

SERVER_ENV_PREFIX: Final = "K2_CATALOG_AUTH_"
TOKEN_KEY_ENV: Final = SERVER_ENV_PREFIX + "TOKEN_KEY"


def generate() -> dict[str, object]:
    """A fresh signing key and one secret per principal, as `Credentials` fields.

    URL-safe, like every generated secret: a credential travels in form bodies and env.
    """
    return {
        "catalog_token_key": secrets.token_urlsafe(32),
        "catalog_secrets": {p.value: secrets.token_urlsafe(24) for p in CatalogPrincipal},
    }


def server_env_name(principal: CatalogPrincipal) -> str:
    return SERVER_ENV_PREFIX + principal.name


def server_env(credentials: Credentials) -> dict[str, str]:
    """The catalog server's `K2_CATALOG_AUTH_*` variables (empty when the stack has none: the
    server then refuses to start, saying which variable is missing)."""
    if not credentials.catalog_token_key:
        return {}
    env = {TOKEN_KEY_ENV: credentials.catalog_token_key}
    for principal in CatalogPrincipal:
        credential = credentials.catalog_credential(principal)
        if credential is not None:
            env[server_env_name(principal)] = credential
    return env


def fetch_token(base_url: str, credential: str, timeout_s: float = 3.0) -> str:
    """A bearer token for `credential` (`client_id:secret`), the way Iceberg clients ask.

    Raises:
        httpx.HTTPError: the catalog did not answer, or refused the credential.
    """
    client_id, _, client_secret = credential.partition(":")
    response = httpx.post(
        base_url.rstrip("/") + CATALOG_TOKEN_PATH,
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
            "scope": "catalog",
        },
        timeout=timeout_s,
    )
    response.raise_for_status()
    token: str = response.json()["access_token"]
    return token


def bearer(token: str) -> Mapping[str, str]:
    return {"Authorization": f"Bearer {token}"}
