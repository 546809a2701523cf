"""The one place K2 builds its Iceberg catalog client.

Every K2 component that reads or writes tables calls `load_catalog(endpoints)`: the REST
catalog's URI and the S3 settings pyiceberg needs to read and write data files come from the
same `K2_*` endpoints everywhere, so no module assembles catalog properties of its own.
"""

from __future__ import annotations

from typing import Final

from pyiceberg.catalog import Catalog
from pyiceberg.catalog import load_catalog as _pyiceberg_load_catalog
from pyiceberg.exceptions import ServerError
from requests import RequestException

from k2.errors import K2Error
from k2.settings import S3_REGION, Endpoints

CATALOG_NAME: Final = "k2"


class CatalogUnavailableError(K2Error):
    """The Iceberg REST catalog could not be reached or refused to hand out its config."""


def catalog_properties(endpoints: Endpoints) -> dict[str, str]:
    """pyiceberg's properties for K2's REST catalog (secrets included: never log them)."""
    return {
        "type": "rest",
        "uri": endpoints.iceberg_catalog_uri,
        "s3.endpoint": endpoints.s3_endpoint,
        "s3.access-key-id": endpoints.s3_access_key_id,
        "s3.secret-access-key": endpoints.s3_secret_access_key.get_secret_value(),
        "s3.region": S3_REGION,
        # Buckets are addressed by path (http://host:port/bucket/key): the S3 store runs on
        # one host with no per-bucket DNS names.
        "s3.path-style-access": "true",
    }


def load_catalog(endpoints: Endpoints) -> Catalog:
    """K2's Iceberg catalog: the REST catalog at `K2_ICEBERG_CATALOG_URI`, data on `K2_S3_*`.

    Raises:
        CatalogUnavailableError: the catalog did not answer its `/v1/config` handshake.
    """
    try:
        return _pyiceberg_load_catalog(CATALOG_NAME, **catalog_properties(endpoints))
    except (RequestException, ServerError) as e:
        raise CatalogUnavailableError(
            f"Iceberg REST catalog at {endpoints.iceberg_catalog_uri} is unavailable: {e}"
        ) from e
