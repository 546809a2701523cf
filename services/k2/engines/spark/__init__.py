"""Apache Spark on K2's tables: the documented Spark SQL entry point.

    from k2.engines.spark import session
    spark = session(find_endpoints())          # local[*]; SparkSettings(master=...) for a cluster
    spark.sql("SELECT symbol, count(*) FROM k2.market.trades GROUP BY symbol").show()

Needs the optional `spark` extra (pyspark) and Java 17; the Iceberg jars are fetched from
Maven Central into K2's cache on first use. One session per process: Spark keeps one JVM.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from k2.engines.spark.config import SPARK_CATALOG, SparkSettings, spark_conf, table_name
from k2.engines.spark.install import spark_jars
from k2.errors import ConfigError
from k2.settings import CatalogPrincipal, Endpoints

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def _session_class() -> type[SparkSession]:
    try:
        from pyspark.sql import SparkSession  # optional extra, imported lazily
    except ImportError as e:
        raise ConfigError(
            "the Spark engine needs the `spark` extra: pip install 'k2[spark]'"
        ) from e
    return SparkSession


def running_session() -> SparkSession | None:
    """The Spark session already active in this process, if any.

    Raises:
        ConfigError: pyspark is not installed.
    """
    return _session_class().getActiveSession()


def session(
    endpoints: Endpoints,
    principal: CatalogPrincipal = CatalogPrincipal.QUERY,
    settings: SparkSettings = SparkSettings(),
) -> SparkSession:
    """A Spark session with K2's catalog registered as `k2`, acting as `principal`.

    Spark keeps one session per process: a running one is returned as it is (its catalog
    configuration was fixed when it started).

    Raises:
        ConfigError: pyspark is not installed, or no credential for `principal`.
    """
    builder = _session_class().builder
    for key, value in spark_conf(endpoints, principal, spark_jars(), settings).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    return spark


__all__ = [
    "SPARK_CATALOG",
    "SparkSettings",
    "running_session",
    "session",
    "spark_conf",
    "table_name",
]
