"""K2's Kafka launcher with and without SASL/SCRAM: the node's server properties and the
storage-format arguments, checked without starting anything."""

from __future__ import annotations

from pathlib import Path

from k2stack import kafka_security as sasl
from k2stack.docker import aliases
from k2stack.local.context import KafkaNode, StackContext
from k2stack.local.services.kafka import server_properties
from k2stack.topology import Credentials, ServiceName
from tests.unit.infra.nodes import CONTROLLER, cluster_broker_1

# Test values, not credentials.
PASSWORDS = {
    "k2-admin": "admin-pw-0123456789",
    "k2-ingest": "ingest-pw-0123456789",
    "k2-producer": "producer-pw-0123456789",
}
SCRAM_LOGIN = "org.apache.kafka.common.security.scram.ScramLoginModule"


def node(scram: dict[str, str] | None) -> KafkaNode:
    return cluster_broker_1(scram, cluster_id="SV3v6vQ-qb_oOgvIovcSOQ")


def context(tmp_path: Path, kafka: KafkaNode | None) -> StackContext:
    return StackContext(
        state_dir=tmp_path / "state",
        cache_dir=tmp_path / "cache",
        ports=aliases.in_network_ports(),
        credentials=Credentials(postgres_password="", s3_access_key_id="", s3_secret_access_key=""),
        bind_host="0.0.0.0",
        kafka=kafka,
    )


def test_scram_client_listeners_and_plaintext_controller(tmp_path: Path) -> None:
    props = server_properties(context(tmp_path, node(PASSWORDS)))
    assert props["listener.security.protocol.map"] == (
        "INTERNAL:SASL_PLAINTEXT,EXTERNAL:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT"
    )
    assert props["listeners"] == (
        f"INTERNAL://0.0.0.0:9092,EXTERNAL://0.0.0.0:19192,CONTROLLER://0.0.0.0:{CONTROLLER}"
    )
    assert props["advertised.listeners"] == "INTERNAL://kafka-1:9092,EXTERNAL://127.0.0.1:19192"
    # Inter-broker traffic is the first listener's: SASL like every client.
    assert props["inter.broker.listener.name"] == "INTERNAL"
    assert props["controller.listener.names"] == "CONTROLLER"
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert props["sasl.mechanism.inter.broker.protocol"] == "SCRAM-SHA-512"
    assert props["authorizer.class.name"] == (
        "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
    )
    assert props["super.users"].split(";") == ["User:k2-admin", "User:ANONYMOUS"]
    assert props["allow.everyone.if.no.acl.found"] == "false"


def test_first_listener_logs_in_as_admin_the_others_only_verify(tmp_path: Path) -> None:
    props = server_properties(context(tmp_path, node(PASSWORDS)))
    jaas = {k: v for k, v in props.items() if k.endswith(".sasl.jaas.config")}
    assert jaas == {
        "listener.name.internal.scram-sha-512.sasl.jaas.config": (
            f'{SCRAM_LOGIN} required username="k2-admin" password="{PASSWORDS["k2-admin"]}";'
        ),
        "listener.name.external.scram-sha-512.sasl.jaas.config": f"{SCRAM_LOGIN} required;",
    }
    # Only the admin's password is in the file; the others live in the metadata log.
    text = str(props)
    assert PASSWORDS["k2-ingest"] not in text and PASSWORDS["k2-producer"] not in text


def test_three_nodes_form_a_three_voter_quorum(tmp_path: Path) -> None:
    props = server_properties(context(tmp_path, node(PASSWORDS)))
    assert props["controller.quorum.voters"] == (
        f"0@kafka-0:{CONTROLLER},1@kafka-1:{CONTROLLER},2@kafka-2:{CONTROLLER}"
    )
    assert props["node.id"] == "1"
    assert props["process.roles"] == "broker,controller"
    for key in (
        "default.replication.factor",
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "share.coordinator.state.topic.replication.factor",
    ):
        assert props[key] == "3", key
    for key in (
        "min.insync.replicas",
        "transaction.state.log.min.isr",
        "share.coordinator.state.topic.min.isr",
    ):
        assert props[key] == "2", key


def test_without_scram_every_listener_is_plaintext(tmp_path: Path) -> None:
    props = server_properties(context(tmp_path, node(None)))
    assert props["listener.security.protocol.map"] == (
        "INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT"
    )
    assert not [k for k in props if "sasl" in k or "super.users" in k or "authorizer" in k]
    assert node(None).admin_client_config() == {}


def test_the_local_node_is_one_plaintext_node_on_loopback(tmp_path: Path) -> None:
    ctx = StackContext(
        state_dir=tmp_path,
        cache_dir=tmp_path,
        ports={ServiceName.KAFKA: {"broker": 5001, "controller": 5002}},
        credentials=Credentials(postgres_password="", s3_access_key_id="", s3_secret_access_key=""),
    )
    props = server_properties(ctx)
    assert props["listener.security.protocol.map"] == "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:5001,CONTROLLER://127.0.0.1:5002"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:5002"
    assert "authorizer.class.name" not in props


def test_format_creates_each_principal() -> None:
    assert sasl.format_arguments(PASSWORDS) == [
        "--add-scram",
        f"SCRAM-SHA-512=[name=k2-admin,password={PASSWORDS['k2-admin']}]",
        "--add-scram",
        f"SCRAM-SHA-512=[name=k2-ingest,password={PASSWORDS['k2-ingest']}]",
        "--add-scram",
        f"SCRAM-SHA-512=[name=k2-producer,password={PASSWORDS['k2-producer']}]",
    ]
    assert sasl.format_arguments({}) == []
    assert [p.user for p in sasl.PRINCIPALS] == sorted(PASSWORDS)


def test_the_nodes_admin_client_authenticates_as_admin() -> None:
    assert node(PASSWORDS).admin_client_config() == {
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "k2-admin",
        "sasl.password": PASSWORDS["k2-admin"],
    }


def test_client_env_is_what_k2s_clients_read() -> None:
    assert sasl.client_env(sasl.INGEST, "pw-0123456789abcdef") == {
        "K2_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "K2_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "K2_KAFKA_SASL_USERNAME": "k2-ingest",
        "K2_KAFKA_SASL_PASSWORD": "pw-0123456789abcdef",
    }
