"""The cluster profile's shape without running it: processes, ports, Kafka nodes, endpoints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from k2.errors import StackError
from k2.settings import Endpoints
from k2stack import kafka_security as sasl
from k2stack.cli import app
from k2stack.local.context import StackContext, default_state_dir
from k2stack.local.ports import MULTI_PROCESS_PORT_OFFSET, default_ports, process_ports
from k2stack.local.services.kafka import server_properties
from k2stack.local.stack import LocalStack
from k2stack.local.units import base_context, replica_addresses, unit_context, units
from k2stack.topology import LAYOUTS, Credentials, Profile, ServiceName, endpoints

CLUSTER = LAYOUTS[Profile.CLUSTER]
SINGLE = LAYOUTS[Profile.SINGLE]
CREDENTIALS = Credentials(
    postgres_password="pg-password-123",
    s3_access_key_id="k2key",
    s3_secret_access_key="s3-secret-123",
    registry_user="k2-user",
    registry_password="registry-pw-123",
)


def test_the_cluster_profile_is_three_brokers_rf3_min_isr2_two_registries() -> None:
    assert (CLUSTER.kafka_brokers, CLUSTER.replication_factor, CLUSTER.min_insync_replicas) == (
        3,
        3,
        2,
    )
    assert CLUSTER.registry_replicas == 2
    # Explicit heaps for every replicated JVM (they share a 2-core, 24 GiB machine).
    assert CLUSTER.heap_mb(ServiceName.KAFKA) == 512
    assert CLUSTER.heap_mb(ServiceName.REGISTRY) == 512


def test_processes_are_named_per_replica_single_keeps_service_names() -> None:
    assert [u.name for u in units(SINGLE)] == [s.value for s in ServiceName]
    names = [u.name for u in units(CLUSTER)]
    assert names == [
        "postgres",
        "seaweedfs",
        "kafka-0",
        "kafka-1",
        "kafka-2",
        "registry-0",
        "registry-1",
        "iceberg-rest",
        "prometheus",
    ]


@pytest.mark.parametrize("ephemeral", [False, True])
def test_every_process_gets_ports_of_its_own(ephemeral: bool) -> None:
    ports = process_ports(CLUSTER, ephemeral)
    assert set(ports) == {u.name for u in units(CLUSTER)}
    every = [port for named in ports.values() for port in named.values()]
    assert len(every) == len(set(every))
    # SeaweedFS's worker dials admin + 10000 whatever it is told.
    assert ports["seaweedfs"]["admin_grpc"] == ports["seaweedfs"]["admin"] + 10000
    if not ephemeral:
        # A persistent cluster stack can run beside the persistent single-node one.
        single = {port for named in default_ports().values() for port in named.values()}
        assert not single & set(every)
        assert ports["postgres"]["sql"] == 15432 + MULTI_PROCESS_PORT_OFFSET


def test_the_single_profile_keeps_the_topologys_ports() -> None:
    assert process_ports(SINGLE, False) == {k.value: v for k, v in default_ports().items()}


def _contexts(tmp_path: Path) -> tuple[StackContext, dict[str, dict[str, int]]]:
    ports = process_ports(CLUSTER, False)
    plain = StackContext(
        state_dir=tmp_path, cache_dir=tmp_path / "cache", ports={}, credentials=CREDENTIALS
    )
    return base_context(plain, CLUSTER, ports), ports


def test_each_kafka_node_is_a_voter_with_its_own_listeners_and_directory(tmp_path: Path) -> None:
    base, ports = _contexts(tmp_path)
    brokers = [u for u in units(CLUSTER) if u.service is ServiceName.KAFKA]
    voters = ",".join(f"{i}@127.0.0.1:{ports[f'kafka-{i}']['controller']}" for i in range(3))
    for unit in brokers:
        ctx = unit_context(base, unit, CLUSTER, ports, "cluster-id-1")
        props = server_properties(ctx)
        own = ports[unit.name]
        assert props["node.id"] == str(unit.index)
        assert props["process.roles"] == "broker,controller"
        assert props["controller.quorum.voters"] == voters
        assert props["listeners"] == (
            f"PLAINTEXT://127.0.0.1:{own['broker']},CONTROLLER://127.0.0.1:{own['controller']}"
        )
        assert props["default.replication.factor"] == "3"
        assert props["min.insync.replicas"] == "2"
        assert props["offsets.topic.replication.factor"] == "3"
        assert props["log.dirs"] == str(tmp_path / "services" / unit.name / "data")
        assert ctx.log_file(ServiceName.KAFKA) == tmp_path / "logs" / f"{unit.name}.log"
        assert ctx.pid_file(ServiceName.KAFKA) == tmp_path / "pids" / f"{unit.name}.pid"
        assert ctx.heap_mb(ServiceName.KAFKA) == 512
        assert ctx.kafka is not None and ctx.kafka.cluster_id == "cluster-id-1"
        # Other services are still reached at their own (first) process.
        assert ctx.port(ServiceName.POSTGRES, "sql") == ports["postgres"]["sql"]


def test_env_lists_every_broker_and_both_registries(tmp_path: Path) -> None:
    base, ports = _contexts(tmp_path)
    env = endpoints(base.ports, CREDENTIALS, replicas=replica_addresses(CLUSTER, ports))
    found = Endpoints.from_env(env)
    assert found.kafka_bootstrap_servers == ",".join(
        f"127.0.0.1:{ports[f'kafka-{i}']['broker']}" for i in range(3)
    )
    assert found.schema_registry_urls == tuple(
        f"http://k2-user:registry-pw-123@127.0.0.1:{ports[f'registry-{i}']['http']}/apis/ccompat/v7"
        for i in range(2)
    )


def test_a_stack_keeps_its_profile(tmp_path: Path) -> None:
    (tmp_path / "stack").mkdir()
    (tmp_path / "stack" / "stack.json").write_text(
        '{"profile": "cluster", "ports": {}, "credentials": {}}'
    )
    assert LocalStack(tmp_path / "stack", log=lambda _: None).profile is Profile.CLUSTER
    single = LocalStack(tmp_path / "stack", log=lambda _: None, profile=Profile.SINGLE)
    with pytest.raises(StackError, match="is a cluster stack, not single"):
        single.context()


def test_the_cluster_profile_lives_beside_the_single_node_stack(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("K2_STACK_DIR", raising=False)
    single, cluster = default_state_dir(Profile.SINGLE), default_state_dir(Profile.CLUSTER)
    assert cluster == single.with_name("stack-cluster")


def test_the_profile_is_the_local_backends_option() -> None:
    result = CliRunner().invoke(app, ["up", "--backend", "docker", "--profile", "cluster"])
    assert result.exit_code == 1
    assert "pulumi up --stack cluster" in result.output


def test_the_cluster_profile_runs_sasl_scram_and_its_env_logs_in_as_the_admin(
    tmp_path: Path,
) -> None:
    passwords = {p.user: f"{p.user}-password-0123" for p in sasl.PRINCIPALS}
    secured = CREDENTIALS.model_copy(update={"kafka_scram_passwords": passwords})
    (tmp_path / "stack").mkdir()
    (tmp_path / "stack" / "stack.json").write_text(
        json.dumps(
            {
                "profile": "cluster",
                "ports": process_ports(CLUSTER, False),
                "credentials": secured.model_dump(),
                "kafka_cluster_id": "cluster-id-1",
            }
        )
    )
    stack = LocalStack(tmp_path / "stack", log=lambda _: None)
    for broker in stack.process_names("kafka"):
        ctx = stack.process_context(broker)
        assert ctx.kafka is not None and ctx.kafka.scram_passwords == passwords
        props = server_properties(ctx)
        assert props["listener.security.protocol.map"] == (
            "PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT"
        )
        assert props["allow.everyone.if.no.acl.found"] == "false"
    admin = sasl.client_config(sasl.ADMIN.user, passwords[sasl.ADMIN.user])
    assert stack.context().kafka_admin_config() == admin  # probes and the ACL grant
    env = stack.env()
    assert env["K2_KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT"
    assert env["K2_KAFKA_SASL_USERNAME"] == sasl.ADMIN.user
    assert env["K2_KAFKA_SASL_PASSWORD"] == passwords[sasl.ADMIN.user]


def test_a_single_node_stack_stays_plaintext(tmp_path: Path) -> None:
    (tmp_path / "stack").mkdir()
    (tmp_path / "stack" / "stack.json").write_text(
        json.dumps({"ports": process_ports(SINGLE, False), "credentials": CREDENTIALS.model_dump()})
    )
    stack = LocalStack(tmp_path / "stack", log=lambda _: None)
    assert stack.context().kafka_admin_config() == {}
    assert not any(name.startswith("K2_KAFKA_S") for name in stack.env())
