"""Bad stack config fails at preview time with a message naming the config key."""

from __future__ import annotations

import pytest

from k2.errors import ConfigError
from tests.infra.infra_harness import SECRETS, run_stack, stack_config


def fails(stack: str, config: dict[str, str], secret_keys: list[str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        run_stack(stack, config, secret_keys)
    return str(caught.value)


def test_unknown_key_is_named() -> None:
    message = fails("dev", stack_config("dev") | {"k2:kafkaBroker": "3"})
    assert "k2:kafkaBroker is not a known config key" in message


def test_replication_factor_above_broker_count() -> None:
    message = fails("cluster", stack_config("cluster") | {"k2:kafkaBrokers": "2"})
    assert "k2:replicationFactor is 3 but k2:kafkaBrokers is 2" in message


def test_min_insync_above_replication_factor() -> None:
    message = fails("dev", stack_config("dev") | {"k2:minInsyncReplicas": "2"})
    assert "k2:minInsyncReplicas" in message


@pytest.mark.parametrize("key", sorted(SECRETS))
def test_missing_secret_is_named(key: str) -> None:
    config = stack_config("dev")
    del config[key]
    assert f"{key} is required" in fails("dev", config)


def test_secret_given_as_plain_config_is_refused() -> None:
    keys = [k for k in SECRETS if k != "k2:postgresPassword"]
    message = fails("dev", stack_config("dev"), keys)
    assert "k2:postgresPassword must be set as a secret" in message


def test_ci_needs_a_name_prefix_per_run() -> None:
    config = stack_config("ci")
    del config["k2:namePrefix"]
    assert "k2:namePrefix is required" in fails("ci", config)


def test_dev_publishes_on_loopback_only() -> None:
    message = fails("dev", stack_config("dev") | {"k2:publishAddress": "0.0.0.0"})
    assert "k2:publishAddress must be 127.0.0.1" in message


def test_ephemeral_stack_cannot_publish_ports() -> None:
    assert "k2:publishPorts" in fails("ci", stack_config("ci") | {"k2:publishPorts": "true"})


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ({"k2:objectStore": "minio"}, "k2:minioImage"),
        ({"k2:objectStore": "minio", "k2:minioImage": "minio/minio:latest"}, "k2:minioImage"),
        ({"k2:objectStore": "external"}, "k2:externalS3Endpoint"),
        ({"k2:objectStore": "ceph"}, "k2:objectStore"),
        ({"k2:kafkaBrokers": "many"}, "k2:kafkaBrokers"),
    ],
)
def test_object_store_and_type_errors_name_the_key(extra: dict[str, str], key: str) -> None:
    assert key in fails("dev", stack_config("dev") | extra)


def test_every_problem_is_reported_at_once() -> None:
    config = stack_config("dev") | {"k2:bogus": "1"}
    del config["k2:grafanaAdminPassword"]
    message = fails("dev", config)
    assert "k2:bogus" in message
    assert "k2:grafanaAdminPassword" in message
