"""The one place K2's Spark session configuration is built from `K2_*` endpoints.

Spark reaches K2's tables the way pyiceberg does (`k2.catalog`): the REST catalog at
`K2_ICEBERG_CATALOG_URI` with a principal's OAuth2 client credential (Iceberg's `credential` +
`oauth2-server-uri`), and the S3 warehouse at `K2_S3_*` through Iceberg's own S3FileIO (no
Hadoop S3A). The catalog is registered as `k2`, so tables are `k2.<namespace>.<table>` and
procedures `k2.system.<procedure>`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from k2.catalog import SCOPE, token_url
from k2.errors import ConfigError
from k2.settings import S3_REGION, CatalogPrincipal, Endpoints

SPARK_CATALOG: Final = "k2"
LOCAL_MASTER: Final = "local[*]"
# Spark's own redaction covers secret/password/token/access.key; Iceberg's `credential`
# (client_id:secret) must be hidden too wherever Spark prints its configuration.
_REDACTION: Final = r"(?i)secret|password|token|access[.]key|credential"


@dataclass(frozen=True)
class SparkSettings:
    """How big a Spark driver K2 starts (executors come from the master in cluster mode).

    Defaults suit one shared 2-core machine: one driver with an explicit heap, few shuffle
    partitions (Spark's 200 would schedule 200 tiny tasks per shuffle here).
    """

    master: str = LOCAL_MASTER
    driver_memory: str = "2g"
    shuffle_partitions: int = 8
    app_name: str = "k2"


def spark_conf(
    endpoints: Endpoints,
    principal: CatalogPrincipal,
    jars: Sequence[Path],
    settings: SparkSettings = SparkSettings(),
) -> dict[str, str]:
    """Spark configuration for K2's catalog as `principal` (secrets included: never log it).

    Raises:
        ConfigError: this process has no credential for `principal`.
    """
    try:
        credential = endpoints.catalog_credential(principal)
    except ValueError as e:
        raise ConfigError(str(e)) from e
    catalog = f"spark.sql.catalog.{SPARK_CATALOG}"
    return {
        "spark.master": settings.master,
        "spark.app.name": settings.app_name,
        "spark.driver.memory": settings.driver_memory,
        "spark.sql.shuffle.partitions": str(settings.shuffle_partitions),
        "spark.jars": ",".join(str(j) for j in jars),
        "spark.sql.extensions": (
            "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions"
        ),
        # Money stays exact: Spark's default rounds a decimal result's scale away when its
        # precision would pass 38 (sum(price * size) came back as decimal(38,7)); off, the
        # full scale is kept (decimal(38,16)) and an overflow is an error, never a rounding.
        "spark.sql.decimalOperations.allowPrecisionLoss": "false",
        # K2's times are UTC instants (timestamptz); show and compute them as such.
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.enabled": "false",
        "spark.redaction.regex": _REDACTION,
        # Loopback only, like every service of the stack (a cluster master overrides this).
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        catalog: "org.apache.iceberg.spark.SparkCatalog",
        f"{catalog}.type": "rest",
        f"{catalog}.uri": endpoints.iceberg_catalog_uri,
        f"{catalog}.credential": credential,
        f"{catalog}.oauth2-server-uri": token_url(endpoints),
        f"{catalog}.scope": SCOPE,
        f"{catalog}.io-impl": "org.apache.iceberg.aws.s3.S3FileIO",
        f"{catalog}.s3.endpoint": endpoints.s3_endpoint,
        f"{catalog}.s3.path-style-access": "true",
        f"{catalog}.s3.access-key-id": endpoints.s3_access_key_id,
        f"{catalog}.s3.secret-access-key": endpoints.s3_secret_access_key.get_secret_value(),
        f"{catalog}.client.region": S3_REGION,
        # Ingest workers commit every few seconds: Spark's table cache (on by default, 30 s)
        # answered a count from a snapshot older than the session's own last read (a CI run
        # saw 1320 of 2220 committed rows). Every query loads the table's current metadata.
        f"{catalog}.cache-enabled": "false",
    }


def table_name(identifier: tuple[str, str] | str) -> str:
    """A K2 table identifier as Spark names it in the `k2` catalog (`k2.market.trades`)."""
    parts = identifier.split(".") if isinstance(identifier, str) else list(identifier)
    return ".".join([SPARK_CATALOG, *(f"`{p}`" for p in parts)])
