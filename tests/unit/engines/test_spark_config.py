"""Spark's configuration for K2's catalog comes from the same K2_* endpoints as pyiceberg's."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import SecretStr

from k2.engines.spark.config import SparkSettings, spark_conf, table_name
from k2.errors import ConfigError
from k2.settings import CatalogPrincipal, Endpoints

MAINTAIN_CREDENTIAL = "k2-maintain:maintain-secret"


def _endpoints() -> Endpoints:
    return Endpoints(
        kafka_bootstrap_servers="127.0.0.1:19092",
        schema_registry_url="http://127.0.0.1:18081/apis/ccompat/v7",
        iceberg_catalog_uri="http://127.0.0.1:18181/",
        s3_endpoint="http://127.0.0.1:18333",
        s3_access_key_id="access",
        s3_secret_access_key=SecretStr("s3-secret"),
        postgres_dsn=SecretStr("postgresql://k2:pw@127.0.0.1:15432/iceberg_catalog"),
        prometheus_url="http://127.0.0.1:19090",
        iceberg_maintain_credential=SecretStr(MAINTAIN_CREDENTIAL),
    )


def test_the_k2_catalog_is_the_rest_catalog_with_the_principals_credential() -> None:
    conf = spark_conf(
        _endpoints(),
        CatalogPrincipal.MAINTAIN,
        [Path("/cache/a.jar"), Path("/cache/b.jar")],
        SparkSettings(master="spark://cluster:7077", driver_memory="1g", shuffle_partitions=2),
    )
    catalog = {k.removeprefix("spark.sql.catalog.k2."): v for k, v in conf.items()}
    assert conf["spark.sql.catalog.k2"] == "org.apache.iceberg.spark.SparkCatalog"
    assert catalog["type"] == "rest"
    assert catalog["uri"] == "http://127.0.0.1:18181/"
    assert catalog["credential"] == MAINTAIN_CREDENTIAL
    assert catalog["oauth2-server-uri"] == "http://127.0.0.1:18181/v1/oauth/tokens"
    assert catalog["io-impl"] == "org.apache.iceberg.aws.s3.S3FileIO"
    assert catalog["s3.endpoint"] == "http://127.0.0.1:18333"
    assert catalog["s3.path-style-access"] == "true"
    assert catalog["s3.access-key-id"] == "access"
    assert catalog["s3.secret-access-key"] == "s3-secret"
    assert catalog["cache-enabled"] == "false"  # every read sees the latest commit
    assert conf["spark.master"] == "spark://cluster:7077"
    assert conf["spark.driver.memory"] == "1g"
    assert conf["spark.sql.shuffle.partitions"] == "2"
    assert conf["spark.jars"] == "/cache/a.jar,/cache/b.jar"
    assert conf["spark.sql.session.timeZone"] == "UTC"
    assert "IcebergSparkSessionExtensions" in conf["spark.sql.extensions"]
    assert conf["spark.sql.decimalOperations.allowPrecisionLoss"] == "false"  # exact money


def test_spark_redacts_every_secret_key_it_is_given() -> None:
    conf = spark_conf(_endpoints(), CatalogPrincipal.MAINTAIN, [])
    redact = re.compile(conf["spark.redaction.regex"])
    secrets = {"maintain-secret", "s3-secret"}
    for key, value in conf.items():
        if any(s in value for s in secrets):
            assert redact.search(key), f"{key} holds a secret Spark would print"


def test_a_missing_credential_names_its_variable() -> None:
    with pytest.raises(ConfigError, match="K2_ICEBERG_QUERY_CREDENTIAL"):
        spark_conf(_endpoints(), CatalogPrincipal.QUERY, [])


def test_table_names_are_quoted_in_the_k2_catalog() -> None:
    assert table_name(("t1_market", "trades")) == "k2.`t1_market`.`trades`"
    assert table_name("market.trades") == "k2.`market`.`trades`"
