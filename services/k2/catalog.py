"""The one place K2 builds its Iceberg catalog client.

Every K2 component that reads or writes tables calls `load_catalog(endpoints, principal)`: the
REST catalog's URI, the principal's credential and the S3 settings pyiceberg needs to read and
write data files come from the same `K2_*` endpoints everywhere, so no module assembles catalog
properties of its own.

The catalog requires authentication (the Iceberg REST spec's OAuth2 client-credentials flow):
K2 uses pyiceberg's standard `oauth2` auth manager, which fetches a bearer token from
`/v1/oauth/tokens` and renews it before it expires (`expires_in`), so a worker that runs for
days keeps committing. Any standard client works the same way with `credential=<id>:<secret>`.
"""

from __future__ import annotations

from typing import Any, Final

from pyiceberg.catalog import Catalog
from pyiceberg.catalog import load_catalog as _pyiceberg_load_catalog
from pyiceberg.exceptions import ForbiddenError, OAuthError, ServerError, UnauthorizedError
from requests import HTTPError, RequestException

from k2.errors import ConfigError, K2Error
from k2.settings import CATALOG_TOKEN_PATH, S3_REGION, CatalogPrincipal, Endpoints

CATALOG_NAME: Final = "k2"
# The OAuth2 scope K2 asks for; Iceberg clients' default (the server grants it to everyone).
SCOPE: Final = "catalog"
_REFUSED = frozenset({400, 401, 403})


class CatalogUnavailableError(K2Error):
    """The Iceberg REST catalog could not be reached or refused to hand out its config."""


class CatalogAuthError(K2Error):
    """The Iceberg REST catalog refused the principal's credential."""


def token_url(endpoints: Endpoints) -> str:
    """The catalog's OAuth2 token endpoint."""
    return endpoints.iceberg_catalog_uri.rstrip("/") + CATALOG_TOKEN_PATH


def catalog_properties(endpoints: Endpoints, principal: CatalogPrincipal) -> dict[str, Any]:
    """pyiceberg's properties for K2's REST catalog as `principal` (secrets included: never
    log them).

    Raises:
        ConfigError: this process has no credential for `principal`.
    """
    try:
        client_id, _, client_secret = endpoints.catalog_credential(principal).partition(":")
    except ValueError as e:
        raise ConfigError(str(e)) from e
    return {
        "type": "rest",
        "uri": endpoints.iceberg_catalog_uri,
        "auth": {
            "type": "oauth2",
            "oauth2": {
                "client_id": client_id,
                "client_secret": client_secret,
                "token_url": token_url(endpoints),
                "scope": SCOPE,
            },
        },
        "s3.endpoint": endpoints.s3_endpoint,
        "s3.access-key-id": endpoints.s3_access_key_id,
        "s3.secret-access-key": endpoints.s3_secret_access_key.get_secret_value(),
        "s3.region": S3_REGION,
        # Buckets are addressed by path (http://host:port/bucket/key): the S3 store runs on
        # one host with no per-bucket DNS names.
        "s3.path-style-access": "true",
    }


def load_catalog(
    endpoints: Endpoints, principal: CatalogPrincipal = CatalogPrincipal.QUERY
) -> Catalog:
    """K2's Iceberg catalog as `principal`: the REST catalog at `K2_ICEBERG_CATALOG_URI`, data
    on `K2_S3_*`. The default is the least principal, read-only `query`; writers name theirs.

    Raises:
        ConfigError: no credential for `principal` (`K2_ICEBERG_<PRINCIPAL>_CREDENTIAL`).
        CatalogAuthError: the catalog refused the credential.
        CatalogUnavailableError: the catalog did not answer its `/v1/config` handshake.
    """
    properties = catalog_properties(endpoints, principal)
    try:
        return _pyiceberg_load_catalog(CATALOG_NAME, **properties)
    except (OAuthError, UnauthorizedError, ForbiddenError) as e:
        raise _refused(endpoints, principal) from e
    except HTTPError as e:
        # The token request (pyiceberg's oauth2 manager raises requests' own error for it).
        if e.response is not None and e.response.status_code in _REFUSED:
            raise _refused(endpoints, principal) from e
        raise _unavailable(endpoints, e) from e
    except (RequestException, ServerError) as e:
        raise _unavailable(endpoints, e) from e


def _refused(endpoints: Endpoints, principal: CatalogPrincipal) -> CatalogAuthError:
    # Never the credential itself: only which variable to check.
    return CatalogAuthError(
        f"Iceberg REST catalog at {endpoints.iceberg_catalog_uri} refused the {principal.value} "
        f"principal's credential ({principal.env_name})"
    )


def _unavailable(endpoints: Endpoints, e: Exception) -> CatalogUnavailableError:
    return CatalogUnavailableError(
        f"Iceberg REST catalog at {endpoints.iceberg_catalog_uri} is unavailable: {e}"
    )
