"""`K2_SCHEMA_REGISTRY_URL`: one URL or a comma-separated list of one registry's instances."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from k2.errors import ConfigError
from k2.serde.serializer import FAILOVER_RETRIES, registry_client
from k2.settings import Endpoints, registry_urls

A = "http://k2-u:pw-123@127.0.0.1:18081/apis/ccompat/v7"
B = "http://k2-u:pw-123@127.0.0.1:18091/apis/ccompat/v7"


def _endpoints(registry: str) -> Endpoints:
    return Endpoints(
        kafka_bootstrap_servers="127.0.0.1:9092",
        schema_registry_url=registry,
        iceberg_catalog_uri="http://127.0.0.1:8181",
        s3_endpoint="http://127.0.0.1:8333",
        s3_access_key_id="k2",
        s3_secret_access_key="s3-secret",
        postgres_dsn="postgresql://k2:pg@127.0.0.1:5432/k2",
        prometheus_url="http://127.0.0.1:9090",
    )


def test_one_url_stays_one_url() -> None:
    assert registry_urls(A) == (A,)
    endpoints = _endpoints(A)
    assert endpoints.schema_registry_url == A
    assert endpoints.schema_registry_urls == (A,)


def test_several_urls_are_comma_separated_spaces_ignored() -> None:
    endpoints = _endpoints(f" {A} , {B}")
    assert endpoints.schema_registry_urls == (A, B)
    # Normalised, so child processes get the same list back from as_env().
    assert endpoints.as_env()["K2_SCHEMA_REGISTRY_URL"] == f"{A},{B}"


@pytest.mark.parametrize(
    "value", [f"{A},", "", f"{A},127.0.0.1:18091", "ftp://127.0.0.1/x", "http:///path"]
)
def test_a_bad_entry_is_named_by_position_never_by_its_text(value: str) -> None:
    with pytest.raises(ValueError, match="not an http\\(s\\) URL") as raised:
        registry_urls(value)
    assert "pw-123" not in str(raised.value)
    with pytest.raises(ValidationError) as invalid:
        _endpoints(value)
    assert "pw-123" not in str(invalid.value)


def test_every_url_must_carry_the_same_credentials() -> None:
    other = B.replace("pw-123", "other-pw")
    with pytest.raises(ValueError, match="same credentials") as raised:
        registry_urls(f"{A},{other}")
    assert "pw-123" not in str(raised.value)
    assert "other-pw" not in str(raised.value)


def test_registry_client_fails_over_quickly_only_with_several_urls() -> None:
    with registry_client(A) as one:
        rest = one._rest_client
        assert rest.base_urls == [A]
        assert rest.max_retries == 3  # confluent-kafka's default: one URL has nowhere to go
    with registry_client(f"{A},{B}") as two:
        rest = two._rest_client
        assert rest.base_urls == [A, B]
        assert rest.max_retries == FAILOVER_RETRIES["max.retries"]
        assert rest.retries_wait_ms == FAILOVER_RETRIES["retries.wait.ms"]


def test_registry_client_refuses_a_bad_list_with_a_k2_error() -> None:
    with pytest.raises(ConfigError, match="entry 2 of 2"):
        registry_client(f"{A},not-a-url")
