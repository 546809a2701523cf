"""Kafka SASL/SCRAM + ACLs and registry basic auth in the Pulumi program, under Pulumi's mocks."""

from __future__ import annotations

from functools import cache

import pytest

from k2.contracts.catalogue import load_catalogue
from k2.errors import ConfigError
from k2.settings import KafkaClientSecurity, kafka_security_env_names
from k2stack.pulumi import kafka_security as sasl
from k2stack.pulumi.kafka_acls import ingest_group_prefix
from tests.infra.infra_harness import (
    ALL_SECRETS,
    KAFKA_SECRETS,
    SECRETS,
    Resource,
    StackRun,
    env_of,
    is_secret,
    plain,
    run_stack,
    stack_config,
)

ADMIN_PW = KAFKA_SECRETS["k2:kafkaAdminPassword"]
INGEST_PW = KAFKA_SECRETS["k2:kafkaIngestPassword"]
PRODUCER_PW = KAFKA_SECRETS["k2:kafkaProducerPassword"]
REGISTRY_PW = SECRETS["k2:registryPassword"]


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


def brokers(run: StackRun) -> list[Resource]:
    return [r for n, r in run.containers().items() if "-kafka-" in n and "acls" not in n]


def properties(env: dict[str, str]) -> dict[str, str]:
    """What the apache/kafka image makes of the KAFKA_* variables."""
    excluded = sasl.IMAGE_EXCLUDED_ENV
    return {
        sasl.prop_name(k): v for k, v in env.items() if k.startswith("KAFKA_") and k not in excluded
    }


def fails(stack: str, config: dict[str, str], secret_keys: list[str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        run_stack(stack, config, secret_keys)
    return str(caught.value)


# --- brokers -------------------------------------------------------------------------------


@pytest.mark.parametrize("run", [cluster, dev_with_scram], ids=["cluster", "dev+scram"])
def test_scram_listeners_authorizer_and_super_users(run: object) -> None:
    declared = brokers(run())  # type: ignore[operator]
    assert declared
    for broker in declared:
        props = properties(env_of(broker))
        assert props["listener.security.protocol.map"] == (
            "INTERNAL:SASL_PLAINTEXT,EXTERNAL:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT"
        )
        assert props["inter.broker.listener.name"] == "INTERNAL"
        assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
        assert props["sasl.mechanism.inter.broker.protocol"] == "SCRAM-SHA-512"
        assert props["authorizer.class.name"] == (
            "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
        )
        assert props["super.users"].split(";") == ["User:k2-admin", "User:ANONYMOUS"]
        assert props["allow.everyone.if.no.acl.found"] == "false"
        # Brokers log in to each other as the admin principal on the INTERNAL listener.
        internal = props["listener.name.internal.scram-sha-512.sasl.jaas.config"]
        assert 'username="k2-admin"' in internal and f'password="{ADMIN_PW}"' in internal
        assert "password" not in props["listener.name.external.scram-sha-512.sasl.jaas.config"]
        # The image refuses to start a SASL listener without KAFKA_OPTS.
        assert env_of(broker)["KAFKA_OPTS"]


def test_controller_listener_is_never_published() -> None:
    for broker in brokers(cluster()):
        env = env_of(broker)
        controller_port = int(env["KAFKA_LISTENERS"].rsplit(":", 1)[1])
        published = {p["internal"] for p in broker.inputs.get("ports") or []}
        assert controller_port not in published
        assert published  # the EXTERNAL (SASL) listener is


def test_broker_envs_with_passwords_are_secret() -> None:
    for broker in brokers(cluster()):
        assert is_secret(broker.inputs["envs"])
        others = {k: v for k, v in broker.inputs.items() if k != "envs"}
        assert not any(s in str(plain(others)) for s in ALL_SECRETS.values())


def test_scram_users_are_created_at_storage_format() -> None:
    for broker in brokers(cluster()):
        shell, flag, script = plain(broker.inputs["command"])
        assert (shell, flag) == ("sh", "-c")
        lines = script.splitlines()
        (format_line,) = [line for line in lines if "kafka-storage.sh format" in line]
        assert "--ignore-formatted" in format_line  # a restart keeps its data and users
        assert f"--config {sasl.FORMAT_PROPERTIES}" in format_line
        for principal in sasl.PRINCIPALS:
            wanted = f"SCRAM-SHA-512=[name={principal.user},password=${principal.password_env}]"
            assert wanted in format_line
        assert lines[-1] == "exec /etc/kafka/docker/run"  # then the image starts as usual
        env = env_of(broker)
        assert env["K2_SCRAM_PASSWORD_K2_ADMIN"] == ADMIN_PW
        assert env["K2_SCRAM_PASSWORD_K2_INGEST"] == INGEST_PW
        assert env["K2_SCRAM_PASSWORD_K2_PRODUCER"] == PRODUCER_PW


def test_format_properties_are_the_brokers_own_settings_without_secrets() -> None:
    for broker in brokers(cluster()):
        (upload,) = plain(broker.inputs["uploads"])
        assert upload["file"] == sasl.FORMAT_PROPERTIES
        uploaded = dict(line.split("=", 1) for line in upload["content"].splitlines())
        expected = {
            k: v for k, v in properties(env_of(broker)).items() if not k.endswith("jaas.config")
        }
        assert uploaded == expected
        assert not any(s in upload["content"] for s in ALL_SECRETS.values())


def test_broker_health_check_authenticates_as_admin() -> None:
    for broker in brokers(cluster()):
        check = broker.inputs["healthcheck"]["tests"]
        assert check[:3] == ["CMD", "sh", "-c"]
        assert '"$K2_SCRAM_PASSWORD_K2_ADMIN"' in check[3]
        assert "security.protocol=SASL_PLAINTEXT" in check[3]
        assert check[3].endswith(f"--config {sasl.CLIENT_PROPERTIES}")


def test_without_scram_everything_stays_plaintext() -> None:
    run = dev()
    for broker in brokers(run):
        props = properties(env_of(broker))
        assert props["listener.security.protocol.map"] == (
            "INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT"
        )
        assert "authorizer.class.name" not in props
        assert broker.inputs.get("command") is None
    assert "k2-dev-kafka-acls" not in run.containers()
    assert not set(kafka_security_env_names()) & set(run.exports)
    for name, resource in run.containers().items():
        if "-ingest-worker-" in name or name.endswith("-bootstrap"):
            assert not any(k.startswith("K2_KAFKA_S") for k in env_of(resource)), name


# --- ACL job -------------------------------------------------------------------------------


def acl_lines() -> list[str]:
    job = cluster().containers()["k2-cluster-kafka-acls"]
    return [line for line in plain(job.inputs["command"])[2].splitlines() if "kafka-acls" in line]


def test_acl_job_is_a_one_shot_admin_job() -> None:
    job = cluster().containers()["k2-cluster-kafka-acls"]
    assert job.inputs["mustRun"] is False
    assert job.inputs["restart"] == "no"
    assert job.inputs["attach"] is True
    assert job.inputs["privileged"] is False
    assert job.inputs["image"].startswith("apache/kafka:")
    assert is_secret(job.inputs["envs"])
    assert env_of(job)["K2_SCRAM_PASSWORD_K2_ADMIN"] == ADMIN_PW
    assert env_of(job)["KAFKA_HEAP_OPTS"].startswith("-Xmx")
    for line in acl_lines():
        assert "--bootstrap-server kafka-0:9092,kafka-1:9092,kafka-2:9092" in line
        assert f"--command-config {sasl.CLIENT_PROPERTIES}" in line
        assert " --add " in line


def test_acls_grant_exactly_what_each_principal_needs() -> None:
    catalogue = load_catalogue()
    topics = {d.topic.name for d in catalogue.datasets.values()}
    dlqs = {d.dlq_topic for d in catalogue.datasets.values()}
    grants = []
    for line in acl_lines():
        words = line.split()
        principal = words[words.index("--allow-principal") + 1]
        operations = {words[i + 1] for i, w in enumerate(words) if w == "--operation"}
        topic_names = {words[i + 1] for i, w in enumerate(words) if w == "--topic"}
        groups = {words[i + 1] for i, w in enumerate(words) if w == "--group"}
        grants.append(
            (
                principal,
                frozenset(operations),
                frozenset(topic_names),
                frozenset(groups),
                "prefixed" in words,
            )
        )
    assert set(grants) == {
        ("User:k2-ingest", frozenset({"Read", "Describe"}), frozenset(topics), frozenset(), False),
        (
            "User:k2-ingest",
            frozenset({"Read", "Describe"}),
            frozenset(),
            frozenset({ingest_group_prefix()}),
            True,
        ),
        ("User:k2-ingest", frozenset({"Write", "Describe"}), frozenset(dlqs), frozenset(), False),
        (
            "User:k2-producer",
            frozenset({"Write", "Describe"}),
            frozenset(topics),
            frozenset(),
            False,
        ),
    }
    # The ingest workers' group ids are the prefix plus the topic name.
    assert ingest_group_prefix() == "k2-ingest-"


# --- K2's clients --------------------------------------------------------------------------


def client_of(env: dict[str, str]) -> KafkaClientSecurity:
    prefix = "K2_KAFKA_"
    fields = {
        k.removeprefix(prefix).lower(): v for k, v in env.items() if k in kafka_security_env_names()
    }
    return KafkaClientSecurity(**fields)


def test_workers_are_the_ingest_principal_and_bootstrap_the_admin() -> None:
    containers = cluster().containers()
    workers = [r for n, r in containers.items() if "-ingest-worker-" in n]
    assert workers
    for worker in workers:
        assert is_secret(worker.inputs["envs"])
        config = client_of(env_of(worker)).client_config()
        assert config == {
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "SCRAM-SHA-512",
            "sasl.username": "k2-ingest",
            "sasl.password": INGEST_PW,
        }
    bootstrap = client_of(env_of(containers["k2-cluster-bootstrap"])).client_config()
    assert (bootstrap["sasl.username"], bootstrap["sasl.password"]) == ("k2-admin", ADMIN_PW)


def test_outputs_carry_the_admin_client_settings_with_the_password_secret() -> None:
    run = cluster()
    assert run.exports["K2_KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT"
    assert run.exports["K2_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert run.exports["K2_KAFKA_SASL_USERNAME"] == "k2-admin"
    assert run.exports["K2_KAFKA_SASL_PASSWORD"] == ADMIN_PW
    assert "K2_KAFKA_SASL_PASSWORD" in run.secret_exports
    assert "K2_KAFKA_SASL_USERNAME" not in run.secret_exports


def test_client_settings_refuse_an_incomplete_sasl_config() -> None:
    with pytest.raises(ValueError, match="K2_KAFKA_SASL_MECHANISM"):
        KafkaClientSecurity(security_protocol="SASL_PLAINTEXT", sasl_username="u")
    assert KafkaClientSecurity().client_config() == {}


# --- registry ------------------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["dev", "cluster"])
def test_registry_requires_basic_auth(stack: str) -> None:
    run = dev() if stack == "dev" else cluster()
    registry = run.containers()[f"{'k2-dev' if stack == 'dev' else 'k2-cluster'}-registry"]
    assert is_secret(registry.inputs["envs"])
    env = env_of(registry)
    assert env["QUARKUS_HTTP_AUTH_BASIC"] == "true"
    assert env["QUARKUS_SECURITY_USERS_EMBEDDED_ENABLED"] == "true"
    assert env["QUARKUS_SECURITY_USERS_EMBEDDED_PLAIN_TEXT"] == "true"
    assert env["QUARKUS_SECURITY_USERS_EMBEDDED_USERS_K2REGISTRY"] == REGISTRY_PW
    assert env["QUARKUS_SECURITY_USERS_EMBEDDED_ROLES_K2REGISTRY"] == "sr-admin"
    assert env["QUARKUS_HTTP_AUTH_PERMISSION_APIS_PATHS"] == "/apis/*"
    assert env["QUARKUS_HTTP_AUTH_PERMISSION_APIS_POLICY"] == "authenticated"
    check = registry.inputs["healthcheck"]["tests"]
    assert '-u "k2registry:$QUARKUS_SECURITY_USERS_EMBEDDED_USERS_K2REGISTRY"' in check[3]
    assert REGISTRY_PW not in str(check)


def test_registry_url_output_is_secret_and_carries_userinfo() -> None:
    run = dev()
    url = run.exports["K2_SCHEMA_REGISTRY_URL"]
    assert url == f"http://k2registry:{REGISTRY_PW}@127.0.0.1:18081/apis/ccompat/v7"
    assert "K2_SCHEMA_REGISTRY_URL" in run.secret_exports


# --- bad config ----------------------------------------------------------------------------


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


def test_registry_password_must_be_url_safe_and_is_never_echoed() -> None:
    bad = "has spaces and @ signs!"
    message = fails("dev", stack_config("dev") | {"k2:registryPassword": bad})
    assert "k2:registryPassword" in message and "URL-safe" in message
    assert bad not in message


def test_registry_user_must_be_a_plain_lowercase_name() -> None:
    assert "k2:registryUser" in fails("dev", stack_config("dev") | {"k2:registryUser": "K2-Admin"})


# --- the image's env-to-property rule ------------------------------------------------------


@pytest.mark.parametrize(
    "prop",
    [
        "listener.name.internal.scram-sha-512.sasl.jaas.config",
        "sasl.mechanism.inter.broker.protocol",
        "super.users",
        "log.dirs",
        "some_underscored.key",
    ],
)
def test_env_names_round_trip_through_the_images_rule(prop: str) -> None:
    assert sasl.prop_name(sasl.env_name(prop)) == prop
