"""Bad stack config fails at preview time, before any resource, with a message naming the key."""

from __future__ import annotations

import pytest

from k2.errors import ConfigError
from tests.infra.infra_harness import CONTAINER, SECRETS, run_stack, stack_config


def fails(stack: str, config: dict[str, str], secret_keys: list[str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        run_stack(stack, config, secret_keys)
    return str(caught.value)


def test_the_committed_stacks_are_valid() -> None:
    """The baseline every failing case below changes one thing of."""
    for stack in ("dev", "ci", "cluster"):
        assert run_stack(stack).of_type(CONTAINER), stack


def test_unknown_key_is_named() -> None:
    message = fails("dev", stack_config("dev") | {"k2:kafkaBroker": "3"})
    assert "k2:kafkaBroker is not a known config key" in message


def test_replication_factor_above_broker_count() -> None:
    message = fails("cluster", stack_config("cluster") | {"k2:kafkaBrokers": "2"})
    assert "k2:replicationFactor is 3 but k2:kafkaBrokers is 2" in message


def test_min_insync_above_replication_factor() -> None:
    message = fails("dev", stack_config("dev") | {"k2:minInsyncReplicas": "2"})
    assert "k2:minInsyncReplicas is 2, above k2:replicationFactor 1" in message


@pytest.mark.parametrize("key", sorted(SECRETS))
def test_missing_secret_is_named(key: str) -> None:
    config = stack_config("dev")
    del config[key]
    assert f"{key} is required" in fails("dev", config)


def test_secret_given_as_plain_config_is_refused() -> None:
    keys = [k for k in SECRETS if k != "k2:postgresPassword"]
    message = fails("dev", stack_config("dev"), keys)
    assert "k2:postgresPassword must be set as a secret" in message
    assert SECRETS["k2:postgresPassword"] not in message


def test_ci_needs_a_name_prefix_per_run() -> None:
    config = stack_config("ci")
    del config["k2:namePrefix"]
    assert "k2:namePrefix is required" in fails("ci", config)


def test_ephemeral_stack_publishes_on_loopback_only() -> None:
    message = fails("ci", stack_config("ci") | {"k2:publishAddress": "0.0.0.0"})
    assert "k2:publishAddress must be 127.0.0.1 on an ephemeral stack" in message


def test_dev_publishes_on_loopback_only() -> None:
    message = fails("dev", stack_config("dev") | {"k2:publishAddress": "0.0.0.0"})
    assert "k2:publishAddress must be 127.0.0.1 on the dev stack" in message


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ({"k2:dockerProvider": "podman"}, "k2:dockerProvider"),
        ({"k2:portOffset": "-5"}, "k2:portOffset"),
        ({"k2:portOffset": "40000"}, "k2:portOffset"),
        ({"k2:portOffset": "many"}, "k2:portOffset"),
        ({"k2:kafkaBrokers": "many"}, "k2:kafkaBrokers"),
        ({"k2:workerReplicas": "-1"}, "k2:workerReplicas"),
        ({"k2:namePrefix": "K2 Dev"}, "k2:namePrefix"),
    ],
)
def test_bad_values_name_the_key(extra: dict[str, str], key: str) -> None:
    message = fails("dev", stack_config("dev") | extra)
    assert f"{key}:" in message
    # One problem, one line.
    assert message.count("\n  ") == 1


def test_port_offset_cannot_put_a_broker_on_the_controller_port() -> None:
    """Broker 0's external listener is 19092 + offset, inside its container too, where the
    controller listens on 19093."""
    message = fails("dev", stack_config("dev") | {"k2:portOffset": "1"})
    assert "k2:portOffset 1 puts broker 0's external listener on Kafka's controller port" in message
    assert run_stack("dev", stack_config("dev") | {"k2:portOffset": "2"}).of_type(CONTAINER)


def test_every_problem_is_reported_at_once() -> None:
    config = stack_config("dev") | {
        "k2:bogus": "1",
        "k2:dockerProvider": "podman",
        "k2:portOffset": "-1",
    }
    del config["k2:grafanaAdminPassword"]
    plain_keys = [k for k in SECRETS if k != "k2:postgresPassword"]
    message = fails("dev", config, plain_keys)
    for problem in (
        "k2:bogus is not a known config key",
        "k2:dockerProvider:",
        "k2:portOffset:",
        "k2:grafanaAdminPassword is required",
        "k2:postgresPassword must be set as a secret",
    ):
        assert problem in message
