"""The Pulumi program over the dev, ci and cluster stacks, under Pulumi's own mocks."""

from __future__ import annotations

import shlex

import pytest

from k2.settings import endpoint_env_names
from k2stack.pulumi import kafka as kafka_module
from k2stack.topology import GRAFANA, SERVICES, TOPOLOGY, ServiceName, docker_healthcheck
from tests.infra.infra_harness import ALL_SECRETS, SECRETS, StackRun, env_of, is_secret, plain

CONTAINER = "docker:index/container:Container"
REMOTE_IMAGE = "docker:index/remoteImage:RemoteImage"
JOBS = ("bootstrap", "bucket-job", "kafka-acls")
EXPECTED_REPLICAS = {"dev": 1, "ci": 2, "cluster": 3}
EXPECTED_BROKERS = {"dev": 1, "ci": 1, "cluster": 3}
PREFIX = {"dev": "k2-dev", "ci": "ci-run-42", "cluster": "k2-cluster"}
SCRAM_STACKS = {"cluster"}
REGISTRY_USERINFO = f"k2registry:{SECRETS['k2:registryPassword']}@"


def authenticated_probe(stack: str, service: ServiceName) -> bool:
    """Probes that need credentials: the registry always, Kafka when SCRAM is on."""
    return service is ServiceName.REGISTRY or (
        service is ServiceName.KAFKA and stack in SCRAM_STACKS
    )


def brokers_of(run: StackRun) -> list:
    return [r for n, r in run.containers().items() if "-kafka-" in n and not n.endswith(JOBS)]


def services(run: StackRun) -> dict[str, dict]:
    return {name: r.inputs for name, r in run.containers().items() if not name.endswith(JOBS)}


def test_every_topology_service_is_declared(stack: tuple[str, StackRun]) -> None:
    name, run = stack
    declared = set(run.containers())
    prefix = PREFIX[name]
    for spec in TOPOLOGY:
        wanted = f"{prefix}-kafka-0" if spec.name is ServiceName.KAFKA else f"{prefix}-{spec.name}"
        assert wanted in declared, wanted
    assert f"{prefix}-{GRAFANA.name}" in declared
    assert f"{prefix}-bootstrap" in declared


def test_images_are_the_topologys_pinned_images(stack: tuple[str, StackRun]) -> None:
    _, run = stack
    pulled = {r.inputs["name"] for r in run.of_type(REMOTE_IMAGE)}
    assert pulled == {spec.image for spec in TOPOLOGY} | {GRAFANA.image}
    for image in pulled:
        tag = image.rpartition(":")[2]
        assert tag and tag != "latest" and "/" not in tag, image
    built = run.of_type("docker:index/image:Image")
    assert len(built) == 1
    assert not built[0].inputs["imageName"].endswith(":latest")


def test_every_service_has_health_check_wait_restart_and_limits(
    stack: tuple[str, StackRun],
) -> None:
    _, run = stack
    for name, inputs in services(run).items():
        assert inputs["healthcheck"]["tests"][0] == "CMD", name
        assert inputs["wait"] is True, name
        assert inputs["restart"] == "unless-stopped", name
        assert inputs["memory"] > 0, name
        assert inputs["privileged"] is False, name


def test_jobs_run_once_and_are_not_privileged(stack: tuple[str, StackRun]) -> None:
    _, run = stack
    for name, resource in run.containers().items():
        if name.endswith(JOBS):
            assert resource.inputs["mustRun"] is False
            assert resource.inputs["restart"] == "no"
            assert resource.inputs["privileged"] is False
            assert resource.inputs["memory"] > 0


def test_health_checks_run_the_topology_probes(stack: tuple[str, StackRun]) -> None:
    name, run = stack
    containers = run.containers()
    for spec in TOPOLOGY:
        key = "kafka-0" if spec.name is ServiceName.KAFKA else spec.name.value
        tests = containers[f"{PREFIX[name]}-{key}"].inputs["healthcheck"]["tests"]
        probe = docker_healthcheck(spec)
        if authenticated_probe(name, spec.name):
            # The same probe, run by a shell that adds credentials from the container's env.
            assert tests[:3] == ["CMD", "sh", "-c"]
            assert shlex.join(probe[1:]) in tests[3]
            assert not any(s in tests[3] for s in ALL_SECRETS.values())
        else:
            assert tests == probe
        if spec.health.kind == "http":
            assert f":{spec.ports[spec.health.port]}{spec.health.path}" in tests[-1]


def test_services_share_one_network_under_their_aliases(stack: tuple[str, StackRun]) -> None:
    name, run = stack
    (network,) = run.of_type("docker:index/network:Network")
    assert network.inputs["name"] == f"{PREFIX[name]}-net"
    for cname, resource in run.containers().items():
        nets = resource.inputs["networksAdvanced"]
        assert [n["name"] for n in nets] == [network.inputs["name"]], cname
    aliases = {a for r in services(run).values() for a in r["networksAdvanced"][0]["aliases"]}
    assert {s.name.value for s in TOPOLOGY} - {"kafka"} <= aliases
    assert {"kafka", "grafana", "ingest-worker"} <= aliases


def test_ports_published_on_loopback_only_in_dev(stack: tuple[str, StackRun]) -> None:
    name, run = stack
    published = [p for r in services(run).values() for p in r.get("ports") or []]
    if name == "ci":
        assert published == []
        return
    assert published
    for port in published:
        assert port["ip"] == "127.0.0.1"
        assert port["external"] == port["internal"]
    for spec in TOPOLOGY:
        main = next(iter(spec.ports.values()))
        assert any(p["internal"] == main for p in published), spec.name


def test_secrets_are_secret_inputs_and_outputs(stack: tuple[str, StackRun]) -> None:
    name, run = stack
    expected = {
        "K2_S3_ACCESS_KEY_ID",
        "K2_S3_SECRET_ACCESS_KEY",
        "K2_POSTGRES_DSN",
        "K2_SCHEMA_REGISTRY_URL",  # carries the registry password as userinfo
    }
    if name in SCRAM_STACKS:
        expected.add("K2_KAFKA_SASL_PASSWORD")
    assert run.secret_exports == expected
    secrets = tuple(ALL_SECRETS.values())
    for name, resource in run.containers().items():
        envs = resource.inputs.get("envs")
        if any(s in str(plain(envs)) for s in secrets):
            assert is_secret(envs), f"{name} has a secret in plain envs"
        others = {k: v for k, v in resource.inputs.items() if k != "envs"}
        assert not any(s in str(plain(others)) for s in secrets), name


def test_outputs_use_the_k2_endpoint_names(stack: tuple[str, StackRun]) -> None:
    name, run = stack
    assert set(endpoint_env_names()) <= set(run.exports)
    bootstrap = run.exports["K2_KAFKA_BOOTSTRAP_SERVERS"]
    assert bootstrap == ("kafka:9092" if name == "ci" else "127.0.0.1:19092")


def test_cluster_has_three_brokers_with_replication_three(stack: tuple[str, StackRun]) -> None:
    name, run = stack
    brokers = brokers_of(run)
    assert len(brokers) == EXPECTED_BROKERS[name]
    for broker in brokers:
        env = env_of(broker)
        voters = env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")
        assert len(voters) == EXPECTED_BROKERS[name]
        if name == "cluster":
            assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == "3"
            assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "3"
            assert env["KAFKA_MIN_INSYNC_REPLICAS"] == "2"
    assert len({env_of(b)["KAFKA_NODE_ID"] for b in brokers}) == len(brokers)
    assert len({env_of(b)["CLUSTER_ID"] for b in brokers}) == 1


def test_worker_replicas(stack: tuple[str, StackRun]) -> None:
    name, run = stack
    workers = [n for n in run.containers() if "-ingest-worker-" in n]
    assert len(workers) == EXPECTED_REPLICAS[name] == run.exports["workerReplicas"]


def test_environment_wiring_is_the_same_everywhere(stack: tuple[str, StackRun]) -> None:
    """Workers and the bootstrap job get one endpoint set; services point at the same hosts."""
    name, run = stack
    containers = run.containers()
    worker_envs = [env_of(r) for n, r in containers.items() if "-ingest-worker-" in n]
    worker_envs.append(env_of(containers[f"{PREFIX[name]}-bootstrap"]))
    endpoints = [{k: env[k] for k in endpoint_env_names()} for env in worker_envs]
    first = endpoints[0]
    assert all(env == first for env in endpoints)
    assert first["K2_KAFKA_BOOTSTRAP_SERVERS"] == f"kafka:{kafka_module.KAFKA_DOCKER_INTERNAL_PORT}"
    registry_url = f"http://{REGISTRY_USERINFO}registry:18081/apis/ccompat/v7"
    assert first["K2_SCHEMA_REGISTRY_URL"] == registry_url
    assert first["K2_ICEBERG_CATALOG_URI"] == "http://iceberg-rest:18181"
    catalog = env_of(containers[f"{PREFIX[name]}-iceberg-rest"])
    assert catalog["CATALOG_S3_ENDPOINT"] == first["K2_S3_ENDPOINT"]
    assert catalog["CATALOG_URI"].endswith("postgres:15432/iceberg_catalog")
    assert (
        "postgres:15432/schema_registry"
        in env_of(containers[f"{PREFIX[name]}-registry"])["APICURIO_DATASOURCE_URL"]
    )
    grafana = env_of(containers[f"{PREFIX[name]}-grafana"])
    assert grafana["K2_PROMETHEUS_URL"] == first["K2_PROMETHEUS_URL"] == "http://prometheus:19090"


def test_no_drift_between_local_and_docker_topology(stack: tuple[str, StackRun]) -> None:
    """The versions/ports/memory the local backend runs are the ones the program declares."""
    name, run = stack
    containers = run.containers()
    for spec in TOPOLOGY:
        key = "kafka-0" if spec.name is ServiceName.KAFKA else spec.name.value
        inputs = containers[f"{PREFIX[name]}-{key}"].inputs
        assert inputs["image"].startswith(spec.image + "@")
        assert inputs["memory"] == spec.memory_mb
        assert SERVICES[spec.name].version in spec.image
    seaweed = containers[f"{PREFIX[name]}-seaweedfs"].inputs["command"]
    for port in SERVICES[ServiceName.SEAWEEDFS].ports.values():
        assert any(arg.endswith(f"={port}") for arg in seaweed), port


@pytest.mark.parametrize("store", ["minio", "external"])
def test_object_store_alternatives(store: str) -> None:
    from tests.infra.infra_harness import run_stack, stack_config

    config = stack_config("dev") | {"k2:objectStore": store}
    if store == "minio":
        config["k2:minioImage"] = "example/minio:RELEASE.2025-10-15T17-29-55Z"
    else:
        config["k2:externalS3Endpoint"] = "https://s3.example.internal"
    run = run_stack("dev", config)
    names = set(run.containers())
    assert "k2-dev-seaweedfs" not in names
    assert "k2-dev-bucket-job" in names
    assert ("k2-dev-minio" in names) is (store == "minio")
    catalog = env_of(run.containers()["k2-dev-iceberg-rest"])
    expected = "http://minio:18333" if store == "minio" else "https://s3.example.internal"
    assert catalog["CATALOG_S3_ENDPOINT"] == expected
