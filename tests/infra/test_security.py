"""Kafka SASL/SCRAM + ACLs and registry basic auth in the Pulumi program, under Pulumi's mocks.

What the brokers, the ACL job and K2's clients do with these settings is tested on the
launcher and `k2-stack serve` themselves (tests/unit/infra).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import pytest

from k2.errors import ConfigError
from k2.settings import KafkaClientSecurity, kafka_security_env_names
from k2stack.docker.stack_spec import worker_image
from k2stack.pulumi.program import k2_version
from tests.infra.infra_harness import (
    ALL_SECRETS,
    CONTAINER,
    KAFKA_SECRETS,
    SECRETS,
    Resource,
    StackRun,
    env_of,
    is_secret,
    run_stack,
    stack_config,
)

ADMIN_PW = KAFKA_SECRETS["k2:kafkaAdminPassword"]
INGEST_PW = KAFKA_SECRETS["k2:kafkaIngestPassword"]
PRODUCER_PW = KAFKA_SECRETS["k2:kafkaProducerPassword"]
REGISTRY_PW = SECRETS["k2:registryPassword"]
BROKER_SECRETS = {
    "K2_SERVE_KAFKA_SCRAM_ADMIN_PASSWORD": ADMIN_PW,
    "K2_SERVE_KAFKA_SCRAM_INGEST_PASSWORD": INGEST_PW,
    "K2_SERVE_KAFKA_SCRAM_PRODUCER_PASSWORD": PRODUCER_PW,
}


@cache
def cluster() -> StackRun:
    return run_stack("cluster")


@cache
def dev() -> StackRun:
    return run_stack("dev")


@cache
def dev_with_scram() -> StackRun:
    """SCRAM is a switch for any stack, not only the cluster stack."""
    return run_stack("dev", stack_config("dev") | {"k2:kafkaSecurity": "scram"} | KAFKA_SECRETS)


@pytest.fixture(autouse=True)
def _no_kafka_security(monkeypatch: pytest.MonkeyPatch) -> None:
    # `client_of` reads K2_KAFKA_* through pydantic-settings: not from the developer's shell.
    for name in kafka_security_env_names():
        monkeypatch.delenv(name, raising=False)


SCRAM_RUNS = pytest.mark.parametrize(
    ("prefix", "run", "brokers"),
    [("k2-cluster", cluster, 3), ("k2-dev", dev_with_scram, 1)],
    ids=["cluster", "dev+scram"],
)


def brokers_of(run: StackRun, prefix: str) -> list[Resource]:
    containers = run.containers()
    return [
        r for n, r in containers.items() if n.startswith(f"{prefix}-kafka-") and n[-1].isdigit()
    ]


def client_of(env: dict[str, str]) -> dict[str, str]:
    """The librdkafka settings K2's clients derive from a container's K2_KAFKA_* env."""
    fields = {
        k.removeprefix("K2_KAFKA_").lower(): v
        for k, v in env.items()
        if k in kafka_security_env_names()
    }
    return KafkaClientSecurity.model_validate(fields).client_config()


def admin_client(password: str = ADMIN_PW) -> dict[str, str]:
    return {
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "k2-admin",
        "sasl.password": password,
    }


def names_of(run: StackRun, urns: tuple[str, ...]) -> set[str]:
    by_urn = run.by_urn()
    return {by_urn[urn].name for urn in urns}


# --- brokers -------------------------------------------------------------------------------


@SCRAM_RUNS
def test_brokers_get_every_principals_password_as_secret_env(
    prefix: str, run: Callable[[], StackRun], brokers: int
) -> None:
    declared = brokers_of(run(), prefix)
    assert len(declared) == brokers
    for broker in declared:
        assert is_secret(broker.inputs["envs"])
        env = env_of(broker)
        assert {k: v for k, v in env.items() if "SCRAM" in k} == BROKER_SECRETS
        # The brokers' own admin client settings come from the launcher, not the env.
        assert not set(kafka_security_env_names()) & set(env)


# --- the ACL job ---------------------------------------------------------------------------


@SCRAM_RUNS
def test_acl_job_runs_as_admin_after_every_broker_before_bootstrap(
    prefix: str, run: Callable[[], StackRun], brokers: int
) -> None:
    stack = run()
    containers = stack.containers()
    job = containers[f"{prefix}-kafka-acls"]
    assert job.inputs["command"] == ["k2-stack", "kafka-acls"]
    assert job.inputs["image"] == worker_image(k2_version())
    assert is_secret(job.inputs["envs"])
    env = env_of(job)
    assert client_of(env) == admin_client()
    assert env["K2_KAFKA_BOOTSTRAP_SERVERS"] == ",".join(f"kafka-{i}:9092" for i in range(brokers))
    broker_names = {b.name for b in brokers_of(stack, prefix)}
    assert names_of(stack, job.dependencies) == broker_names | {f"{prefix}-net"}
    bootstrap = containers[f"{prefix}-bootstrap"]
    assert job.name in names_of(stack, bootstrap.dependencies)
    order = [r.name for r in stack.resources if r.typ == CONTAINER]
    assert max(order.index(b) for b in broker_names) < order.index(job.name)
    assert order.index(job.name) < order.index(bootstrap.name)


@SCRAM_RUNS
def test_workers_act_as_ingest_and_bootstrap_as_admin(
    prefix: str, run: Callable[[], StackRun], brokers: int
) -> None:
    containers = run().containers()
    workers = [r for n, r in containers.items() if "-ingest-worker-" in n]
    assert workers
    for worker in workers:
        assert is_secret(worker.inputs["envs"])
        assert client_of(env_of(worker)) == {
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "SCRAM-SHA-512",
            "sasl.username": "k2-ingest",
            "sasl.password": INGEST_PW,
        }
    assert client_of(env_of(containers[f"{prefix}-bootstrap"])) == admin_client()
    # The producer principal is for feed handlers outside the stack: no container uses it.
    for name, resource in containers.items():
        assert env_of(resource).get("K2_KAFKA_SASL_USERNAME") != "k2-producer", name


@SCRAM_RUNS
def test_outputs_carry_the_admin_client_settings_with_the_password_secret(
    prefix: str, run: Callable[[], StackRun], brokers: int
) -> None:
    stack = run()
    assert client_of(stack.exports) == admin_client()
    assert "K2_KAFKA_SASL_PASSWORD" in stack.secret_exports
    assert (
        not {
            "K2_KAFKA_SECURITY_PROTOCOL",
            "K2_KAFKA_SASL_MECHANISM",
            "K2_KAFKA_SASL_USERNAME",
        }
        & stack.secret_exports
    )


def test_without_scram_nothing_is_sasl() -> None:
    run = dev()
    containers = run.containers()
    assert "k2-dev-kafka-acls" not in containers
    assert not set(kafka_security_env_names()) & set(run.exports)
    assert run.exports["K2_KAFKA_BOOTSTRAP_SERVERS"] == "127.0.0.1:19092"
    for name, resource in containers.items():
        env = env_of(resource)
        assert not any("SCRAM" in k or k.startswith("K2_KAFKA_S") for k in env), name
        assert client_of(env) == {}, name
        assert not any(s in str(env) for s in KAFKA_SECRETS.values()), name
    # Without passwords nothing in the broker's env is secret: a plain input.
    assert not is_secret(containers["k2-dev-kafka-0"].inputs["envs"])


# --- registry ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stack", "registries"), [("dev", ["registry"]), ("cluster", ["registry-0", "registry-1"])]
)
def test_registry_gets_its_basic_auth_user_as_secret_env(stack: str, registries: list[str]) -> None:
    run = dev() if stack == "dev" else cluster()
    found = sorted(n for n in run.containers() if n.startswith(f"k2-{stack}-registry"))
    assert found == [f"k2-{stack}-{name}" for name in registries]
    for name in found:
        registry = run.containers()[name]
        assert is_secret(registry.inputs["envs"])
        env = env_of(registry)
        assert env["K2_SERVE_REGISTRY_USER"] == "k2registry"
        assert env["K2_SERVE_REGISTRY_PASSWORD"] == REGISTRY_PW
        # The probe runs `k2-stack probe`, which reads the same env: no credential on the line.
        assert registry.inputs["healthcheck"]["tests"] == ["CMD", "k2-stack", "probe", "registry"]


def test_registry_user_is_configurable() -> None:
    run = run_stack("dev", stack_config("dev") | {"k2:registryUser": "feeds"})
    assert env_of(run.containers()["k2-dev-registry"])["K2_SERVE_REGISTRY_USER"] == "feeds"
    assert run.exports["K2_SCHEMA_REGISTRY_URL"].startswith(f"http://feeds:{REGISTRY_PW}@")


def test_registry_url_output_is_secret_and_carries_userinfo() -> None:
    run = dev()
    url = run.exports["K2_SCHEMA_REGISTRY_URL"]
    assert url == f"http://k2registry:{REGISTRY_PW}@127.0.0.1:18081/apis/ccompat/v7"
    assert "K2_SCHEMA_REGISTRY_URL" in run.secret_exports


def test_cluster_clients_get_both_registry_instances_with_the_credentials() -> None:
    run = cluster()
    urls = run.exports["K2_SCHEMA_REGISTRY_URL"].split(",")
    assert urls == [
        f"http://k2registry:{REGISTRY_PW}@127.0.0.1:{port}/apis/ccompat/v7"
        for port in (18081, 18091)
    ]
    assert "K2_SCHEMA_REGISTRY_URL" in run.secret_exports
    worker = env_of(run.containers()["k2-cluster-ingest-worker-trades-0"])
    assert worker["K2_SCHEMA_REGISTRY_URL"].split(",") == [
        f"http://k2registry:{REGISTRY_PW}@registry-{i}:18081/apis/ccompat/v7" for i in range(2)
    ]


# --- bad config ----------------------------------------------------------------------------


def fails(stack: str, config: dict[str, str], secret_keys: list[str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        run_stack(stack, config, secret_keys)
    return str(caught.value)


def test_scram_without_passwords_names_every_missing_key() -> None:
    message = fails("dev", stack_config("dev") | {"k2:kafkaSecurity": "scram"})
    assert "k2:kafkaSecurity is scram but" in message
    for key in KAFKA_SECRETS:
        assert key in message


def test_scram_with_one_password_missing_names_it() -> None:
    config = stack_config("cluster")
    del config["k2:kafkaIngestPassword"]
    message = fails("cluster", config)
    assert "k2:kafkaIngestPassword" in message
    assert "k2:kafkaAdminPassword" not in message


def test_scram_passwords_given_as_plain_config_are_refused() -> None:
    plain_keys = [k for k in ALL_SECRETS if k != "k2:kafkaProducerPassword"]
    message = fails("cluster", stack_config("cluster"), plain_keys)
    assert "k2:kafkaProducerPassword must be set as a secret" in message


def test_unknown_security_mode_is_named() -> None:
    message = fails("dev", stack_config("dev") | {"k2:kafkaSecurity": "kerberos"})
    assert "k2:kafkaSecurity" in message
    assert "'none' or 'scram'" in message


@pytest.mark.parametrize("key", ["k2:registryPassword", "k2:kafkaAdminPassword"])
def test_passwords_must_be_url_safe_and_are_never_echoed(key: str) -> None:
    bad = "has spaces and @ signs!"
    message = fails("cluster", stack_config("cluster") | {key: bad})
    assert key in message and "URL-safe" in message
    assert bad not in message


def test_registry_user_must_be_a_plain_lowercase_name() -> None:
    assert "k2:registryUser" in fails("dev", stack_config("dev") | {"k2:registryUser": "K2-Admin"})
