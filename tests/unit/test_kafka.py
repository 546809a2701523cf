"""k2.kafka: every client config carries the stack's K2_KAFKA_* authentication, and no secret leaks."""

from __future__ import annotations

import pytest

from k2 import kafka
from k2.errors import ConfigError
from k2.settings import Endpoints, KafkaClientSecurity, kafka_security_env_names

PASSWORD = "s3cr3t-Pa55word"  # a test value, not a credential
SCRAM = {
    "K2_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
    "K2_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "K2_KAFKA_SASL_USERNAME": "k2-ingest",
    "K2_KAFKA_SASL_PASSWORD": PASSWORD,
}


@pytest.fixture(autouse=True)
def _no_kafka_security(monkeypatch: pytest.MonkeyPatch) -> None:
    # Start every test from PLAINTEXT, whatever the developer's shell exports.
    for name in kafka_security_env_names():
        monkeypatch.delenv(name, raising=False)


def _set(monkeypatch: pytest.MonkeyPatch, values: dict[str, str]) -> None:
    for name, value in values.items():
        monkeypatch.setenv(name, value)


def test_plaintext_has_no_sasl_keys() -> None:
    config = kafka.client_config("127.0.0.1:9092", **{"group.id": "g"})
    assert config == {"bootstrap.servers": "127.0.0.1:9092", "group.id": "g"}


def test_scram_settings_reach_every_client_config(monkeypatch: pytest.MonkeyPatch) -> None:
    _set(monkeypatch, SCRAM)
    config = kafka.client_config("broker:9092", **{"acks": "all"})
    assert config == {
        "bootstrap.servers": "broker:9092",
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "k2-ingest",
        "sasl.password": PASSWORD,
        "acks": "all",
    }


def test_factories_build_clients_with_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    # librdkafka accepts the SASL keys (it refuses unknown ones); nothing connects yet.
    _set(monkeypatch, SCRAM)
    kafka.producer("127.0.0.1:1", **{"acks": "all"}).flush(0)
    kafka.consumer("127.0.0.1:1", **{"group.id": "g"}).close()
    kafka.admin("127.0.0.1:1")


def test_password_never_in_repr_or_str(monkeypatch: pytest.MonkeyPatch) -> None:
    _set(monkeypatch, SCRAM)
    security = KafkaClientSecurity()
    for text in (repr(security), str(security), str(security.model_dump())):
        assert PASSWORD not in text


def test_endpoints_secrets_never_in_repr_or_str() -> None:
    endpoints = Endpoints.from_env(_endpoint_env())
    for text in (repr(endpoints), str(endpoints)):
        assert "s3-secret" not in text
        assert "pg-secret" not in text


@pytest.mark.parametrize(
    "missing", ["K2_KAFKA_SASL_MECHANISM", "K2_KAFKA_SASL_USERNAME", "K2_KAFKA_SASL_PASSWORD"]
)
def test_incomplete_sasl_settings_fail_clearly(
    monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    _set(monkeypatch, {k: v for k, v in SCRAM.items() if k != missing})
    with pytest.raises(ConfigError, match="needs K2_KAFKA_SASL_MECHANISM") as raised:
        kafka.client_config("broker:9092")
    assert PASSWORD not in str(raised.value)
    assert PASSWORD not in str(raised.value.__cause__)


def test_sasl_settings_without_a_sasl_protocol_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    _set(monkeypatch, {k: v for k, v in SCRAM.items() if k != "K2_KAFKA_SECURITY_PROTOCOL"})
    with pytest.raises(ConfigError, match="protocol is PLAINTEXT") as raised:
        kafka.producer("broker:9092")
    assert PASSWORD not in str(raised.value.__cause__)


def test_unknown_protocol_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("K2_KAFKA_SECURITY_PROTOCOL", "SSL")
    with pytest.raises(ConfigError, match="K2_KAFKA_SECURITY_PROTOCOL"):
        kafka.admin("broker:9092")


def _endpoint_env() -> dict[str, str]:
    return {
        "K2_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092",
        "K2_SCHEMA_REGISTRY_URL": "http://127.0.0.1:8081",
        "K2_ICEBERG_CATALOG_URI": "http://127.0.0.1:8181",
        "K2_S3_ENDPOINT": "http://127.0.0.1:8333",
        "K2_S3_ACCESS_KEY_ID": "k2",
        "K2_S3_SECRET_ACCESS_KEY": "s3-secret",
        "K2_POSTGRES_DSN": "postgresql://k2:pg-secret@127.0.0.1:5432/k2",
        "K2_PROMETHEUS_URL": "http://127.0.0.1:9090",
        "K2_STACK_DIR": "/tmp/ignored",  # not an endpoint: ignored
    }


def test_endpoints_env_round_trip() -> None:
    env = _endpoint_env()
    endpoints = Endpoints.from_env(env)
    assert endpoints.as_env() == {k: v for k, v in env.items() if k != "K2_STACK_DIR"}
