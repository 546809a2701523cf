"""The Pulumi program over the dev, ci and cluster stacks, under Pulumi's own mocks.

What the program declares must be exactly what `stack_spec` returns for the same config (the
Docker backend applies those very specs), so most properties are checked twice: on the
declared `pulumi_docker` inputs directly, and by mapping every container back to a spec.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from k2.contracts.catalogue import load_catalogue
from k2.settings import (
    catalog_credential_env_names,
    endpoint_env_names,
    kafka_security_env_names,
    operator_env_names,
)
from k2stack.docker.spec import ContainerSpec, Healthcheck, PortBinding, StackSpec
from k2stack.docker.stack_spec import host_endpoints, stack_spec, worker_image
from k2stack.pulumi.program import COMPONENTS, SECRET_OUTPUTS, k2_version
from k2stack.serve import CONTAINER_STATE_DIR
from k2stack.topology import GRAFANA, LAYOUTS, SERVICES, TOPOLOGY, Profile, ServiceName
from tests.infra.infra_harness import (
    ALL_SECRETS,
    CI_NAME_PREFIX,
    CI_PORT_OFFSET,
    CONTAINER,
    NETWORK,
    SECRETS,
    VOLUME,
    Resource,
    StackRun,
    env_of,
    is_secret,
    plain,
    validated_config,
)

PREFIX = {"dev": "k2-dev", "ci": CI_NAME_PREFIX, "cluster": "k2-cluster"}
OFFSET = {"dev": 0, "ci": CI_PORT_OFFSET, "cluster": 0}
BROKERS = {"dev": 1, "ci": 1, "cluster": 3}
# Registry instances: one `registry` container, or `registry-<i>` each (the cluster stack's two,
# as the local backend's cluster profile runs them).
REGISTRIES = {"dev": 1, "ci": 1, "cluster": LAYOUTS[Profile.CLUSTER].registry_replicas}
REPLICAS = {"dev": 1, "ci": 1, "cluster": 3}
SCRAM_STACKS = {"cluster"}
JOBS = ("bootstrap", "kafka-acls")
# The ports each service publishes on the host (before the stack's port offset); Kafka's
# external listener is checked on its own.
PUBLISHED = {
    "postgres": {15432},
    "seaweedfs": {18333},
    "registry": {18081},
    "iceberg-rest": {18181},
    "prometheus": {19090},
    "grafana": {13000},
}
TABLES = sorted(load_catalogue().datasets)


@cache
def expected_spec(stack: str) -> StackSpec:
    return stack_spec(validated_config(stack), k2_version())


def named(run: StackRun, stack: str, service: str) -> Resource:
    return run.containers()[f"{PREFIX[stack]}-{service}"]


def registry_names(stack: str) -> list[str]:
    count = REGISTRIES[stack]
    return ["registry"] if count == 1 else [f"registry-{i}" for i in range(count)]


def topology_containers(run: StackRun, stack: str, service: ServiceName) -> list[Resource]:
    if service is ServiceName.KAFKA:
        return [named(run, stack, f"kafka-{i}") for i in range(BROKERS[stack])]
    if service is ServiceName.REGISTRY:
        return [named(run, stack, registry) for registry in registry_names(stack)]
    return [named(run, stack, service.value)]


def workers(run: StackRun) -> dict[str, Resource]:
    return {n: r for n, r in run.containers().items() if "-ingest-worker-" in n}


# --- services, workers, jobs ---------------------------------------------------------------


def test_every_topology_service_runs_k2s_image_under_k2_stack_serve(
    stack: tuple[str, StackRun],
) -> None:
    name, run = stack
    for service in TOPOLOGY:
        containers = topology_containers(run, name, service.name)
        for container in containers:
            inputs = container.inputs
            assert inputs["image"] == SERVICES[service.name].image == service.image
            assert inputs["image"] == f"k2/{service.name.value}:{service.version}"
            assert inputs["command"] == ["k2-stack", "serve", service.name.value]
            assert inputs["healthcheck"]["tests"] == ["CMD", "k2-stack", "probe", service.name]
            assert inputs["wait"] is True
            assert inputs["mustRun"] is True
            assert inputs["attach"] is False
            assert inputs["restart"] == "unless-stopped"
            # The JVM heap is the topology's figure: the container is given more.
            assert inputs["memory"] == inputs["memorySwap"] > service.memory_mb
            assert inputs["privileged"] is False
    assert len(run.of_type(CONTAINER)) == len(expected_spec(name).containers)


def test_grafana_is_the_only_upstream_image(stack: tuple[str, StackRun]) -> None:
    name, run = stack
    images = {r.name: r.inputs["image"] for r in run.of_type(CONTAINER)}
    upstream = {n: i for n, i in images.items() if not i.startswith("k2/")}
    if name == "ci":
        assert upstream == {}
    else:
        assert upstream == {f"{PREFIX[name]}-grafana": GRAFANA.image}
        grafana = named(run, name, "grafana").inputs
        assert grafana["wait"] is True and grafana["restart"] == "unless-stopped"
        assert grafana["privileged"] is False and grafana["memory"] == GRAFANA.memory_mb
    for image in images.values():
        tag = image.rpartition(":")[2]
        assert tag and tag != "latest" and "/" not in tag, image


def test_workers_run_per_table_on_k2s_worker_image(stack: tuple[str, StackRun]) -> None:
    name, run = stack
    declared = workers(run)
    expected = {
        f"{PREFIX[name]}-ingest-worker-{table.replace('_', '-')}-{i}": table
        for table in TABLES
        for i in range(REPLICAS[name])
    }
    assert set(declared) == set(expected)
    assert run.exports["workerReplicas"] == REPLICAS[name]
    for worker_name, table in expected.items():
        inputs = declared[worker_name].inputs
        assert inputs["image"] == worker_image(k2_version())
        assert inputs["command"] == [
            "k2",
            *("ingest", "run", "--table", table, "--metrics-port", "19400"),
        ]
        assert inputs["healthcheck"]["tests"][0] == "CMD"
        assert "19400/metrics" in inputs["healthcheck"]["tests"][-1]
        assert inputs["wait"] is True and inputs["restart"] == "unless-stopped"
        assert inputs["memory"] > 0 and inputs["privileged"] is False
        assert not inputs.get("ports")


def test_jobs_run_once_and_are_waited_for(stack: tuple[str, StackRun]) -> None:
    name, run = stack
    jobs = {n: r for n, r in run.containers().items() if n.endswith(JOBS)}
    wanted = {f"{PREFIX[name]}-bootstrap"}
    if name in SCRAM_STACKS:
        wanted.add(f"{PREFIX[name]}-kafka-acls")
    assert set(jobs) == wanted
    # Topics get the stack's replication factor, not the catalogue's single replica.
    replication = {"dev": "1", "ci": "1", "cluster": "3"}[name]
    commands = {
        "bootstrap": ["k2", "bootstrap", "--replication", replication],
        "kafka-acls": ["k2-stack", "kafka-acls"],
    }
    for job_name, job in jobs.items():
        inputs = job.inputs
        assert inputs["mustRun"] is False, job_name
        assert inputs["attach"] is True, job_name
        assert inputs["wait"] is False, job_name
        assert inputs["restart"] == "no", job_name
        assert inputs["privileged"] is False, job_name
        assert inputs["memory"] > 0, job_name
        assert inputs["image"] == worker_image(k2_version())
        assert inputs["command"] == commands[job_name.removeprefix(PREFIX[name] + "-")]
        assert not inputs.get("ports") and not inputs.get("healthcheck")


def test_brokers_form_one_cluster(stack: tuple[str, StackRun]) -> None:
    name, run = stack
    brokers = topology_containers(run, name, ServiceName.KAFKA)
    envs = [env_of(b) for b in brokers]
    assert [e["K2_SERVE_KAFKA_NODE_ID"] for e in envs] == [str(i) for i in range(BROKERS[name])]
    assert {e["K2_SERVE_KAFKA_BROKERS"] for e in envs} == {str(BROKERS[name])}
    assert len({e["K2_SERVE_KAFKA_CLUSTER_ID"] for e in envs}) == 1
    replication = {"dev": ("1", "1"), "ci": ("1", "1"), "cluster": ("3", "2")}[name]
    for env in envs:
        rf_isr = (
            env["K2_SERVE_KAFKA_REPLICATION_FACTOR"],
            env["K2_SERVE_KAFKA_MIN_INSYNC_REPLICAS"],
        )
        assert rf_isr == replication
    assert f"{PREFIX[name]}-kafka-{BROKERS[name]}" not in run.containers()


# --- network, ports, volumes ---------------------------------------------------------------


def test_one_network_every_container_on_it_under_its_aliases(stack: tuple[str, StackRun]) -> None:
    name, run = stack
    (network,) = run.of_type(NETWORK)
    assert network.inputs["name"] == f"{PREFIX[name]}-net"
    assert network.inputs["driver"] == "bridge"
    for cname, resource in run.containers().items():
        (attached,) = resource.inputs["networksAdvanced"]
        assert attached["name"] == network.inputs["name"], cname
        aliases = attached.get("aliases") or []
        if cname.endswith(JOBS):
            assert aliases == [], cname
            continue
        assert aliases[0] == resource.inputs["hostname"], cname
        if cname in workers(run):
            assert aliases == [resource.inputs["hostname"], "ingest-worker"], cname
    for i in range(BROKERS[name]):
        broker = named(run, name, f"kafka-{i}").inputs
        assert broker["networksAdvanced"][0]["aliases"] == [f"kafka-{i}", "kafka"]
        assert broker["hostname"] == f"kafka-{i}"
    for service in ("postgres", "seaweedfs", "iceberg-rest", "prometheus"):
        assert named(run, name, service).inputs["networksAdvanced"][0]["aliases"] == [service]
    registries = registry_names(name)
    for registry in registries:
        aliases = named(run, name, registry).inputs["networksAdvanced"][0]["aliases"]
        # Several instances also share the service's alias, as the brokers share `kafka`.
        assert aliases == ([registry] if len(registries) == 1 else [registry, "registry"])


def test_ports_are_published_on_loopback_only(stack: tuple[str, StackRun]) -> None:
    name, run = stack
    offset = OFFSET[name]
    published: dict[str, list[dict[str, Any]]] = {
        cname.removeprefix(PREFIX[name] + "-"): plain(r.inputs.get("ports") or [])
        for cname, r in run.containers().items()
    }
    assert any(published.values())
    for service, ports in published.items():
        for port in ports:
            assert port["ip"] == "127.0.0.1", service
        if service in PUBLISHED:
            assert {p["internal"] for p in ports} == PUBLISHED[service], service
            assert all(p["external"] == p["internal"] + offset for p in ports), service
        elif service.startswith("registry-"):
            # Each instance publishes its API on a host port of its own.
            (port,) = ports
            index = int(service.removeprefix("registry-"))
            assert port["internal"] == 18081
            assert port["external"] == 18081 + 10 * index + offset
        elif service.startswith("kafka-") and service != "kafka-acls":
            # The external listener: the same number inside and out, shifted by the offset.
            (port,) = ports
            index = int(service.removeprefix("kafka-"))
            assert port["internal"] == port["external"] == 19092 + 100 * index + offset
            # The controller listener is never published.
            assert port["internal"] != SERVICES[ServiceName.KAFKA].ports["controller"]
        else:
            assert ports == [], service
    host_ports = [p["external"] for ports in published.values() for p in ports]
    assert len(host_ports) == len(set(host_ports))
    if name == "ci":
        assert published["postgres"] == [{"ip": "127.0.0.1", "internal": 15432, "external": 17432}]
        assert run.exports["K2_KAFKA_BOOTSTRAP_SERVERS"] == "127.0.0.1:21092"
        assert env_of(named(run, name, "kafka-0"))["K2_SERVE_KAFKA_EXTERNAL_PORT"] == "21092"


def test_stateful_services_keep_state_in_a_volume(stack: tuple[str, StackRun]) -> None:
    name, run = stack
    prefix = PREFIX[name]
    mounted: dict[str, str] = {}
    for service in TOPOLOGY:
        for container in topology_containers(run, name, service.name):
            volumes = container.inputs.get("volumes") or []
            if not service.data_dirs:
                assert volumes == [], container.name
                continue
            (volume,) = volumes
            assert volume["volumeName"] == f"{container.name}-data"
            assert volume["containerPath"] == str(CONTAINER_STATE_DIR) == "/var/lib/k2/stack"
            mounted[volume["volumeName"]] = container.name
    assert f"{prefix}-kafka-0-data" in mounted and f"{prefix}-postgres-data" in mounted
    if name != "ci":
        (grafana,) = named(run, name, "grafana").inputs["volumes"]
        assert grafana == {
            "volumeName": f"{prefix}-grafana-data",
            "containerPath": "/var/lib/grafana",
        }
        mounted[grafana["volumeName"]] = "grafana"
    assert {v.inputs["name"] for v in run.of_type(VOLUME)} == set(mounted)


# --- equality with the Docker backend's specs ----------------------------------------------


def _seconds(duration: str) -> float:
    return float(duration.removesuffix("s"))


def declared_spec(run: StackRun, resource: Resource) -> ContainerSpec:
    """The ContainerSpec a declared `docker.Container` stands for, read back from its inputs."""
    inputs = plain(resource.inputs)
    by_urn = run.by_urn()
    env = env_of(resource)
    health = inputs.get("healthcheck")
    (network,) = inputs["networksAdvanced"]
    return ContainerSpec(
        name=inputs["name"],
        service=inputs["hostname"],  # no Docker counterpart: left out of the comparison
        image=inputs["image"],
        command=tuple(inputs["command"]) if inputs.get("command") is not None else None,
        env=env,
        # Docker sees one secret environment, not which variables made it one.
        secret_env=frozenset(env) if is_secret(resource.inputs.get("envs")) else frozenset(),
        ports=tuple(
            PortBinding(container_port=p["internal"], host_port=p["external"], host_ip=p["ip"])
            for p in inputs.get("ports") or []
        ),
        volumes={v["volumeName"]: v["containerPath"] for v in inputs.get("volumes") or []},
        uploads={u["file"]: u["content"] for u in inputs.get("uploads") or []},
        network=network["name"],
        hostname=inputs["hostname"],
        aliases=tuple(network.get("aliases") or ()),
        healthcheck=(
            Healthcheck(
                test=tuple(health["tests"]),
                interval_s=_seconds(health["interval"]),
                timeout_s=_seconds(health["timeout"]),
                start_period_s=_seconds(health["startPeriod"]),
                retries=health["retries"],
            )
            if health
            else None
        ),
        depends_on=tuple(
            sorted(
                by_urn[urn].name for urn in resource.dependencies if by_urn[urn].typ == CONTAINER
            )
        ),
        memory_mb=inputs["memory"],
        user=inputs.get("user"),
        job=not inputs["mustRun"],
        restart=inputs["restart"],
        labels={label["label"]: label["value"] for label in inputs.get("labels") or []},
        wait_timeout_s=inputs["waitTimeout"],
    )


def comparable(spec: ContainerSpec) -> dict[str, Any]:
    """A spec's fields as Docker can tell them: whether its env is secret, not which keys."""
    fields = spec.model_dump(exclude={"service", "secret_env", "depends_on"})
    fields["secret"] = bool(spec.secret_env)
    fields["depends_on"] = sorted(spec.depends_on)
    return fields


def test_declared_containers_are_the_stack_spec(stack: tuple[str, StackRun]) -> None:
    name, run = stack
    spec = expected_spec(name)
    declared = {r.name: comparable(declared_spec(run, r)) for r in run.of_type(CONTAINER)}
    expected = {c.name: comparable(c) for c in spec.containers}
    assert set(declared) == set(expected)
    for container, fields in expected.items():
        assert declared[container] == fields, container
    assert run.exports["containers"] == [c.name for c in spec.containers]
    assert run.exports["network"] == spec.network


def test_declared_network_and_volumes_are_the_stack_spec(stack: tuple[str, StackRun]) -> None:
    name, run = stack
    spec = expected_spec(name)
    labels = [{"label": k, "value": v} for k, v in spec.labels.items()]
    assert spec.labels == {"k2.stack": PREFIX[name]}
    (network,) = run.of_type(NETWORK)
    assert network.inputs["name"] == spec.network
    assert network.inputs["labels"] == labels
    volumes = run.of_type(VOLUME)
    assert sorted(v.inputs["name"] for v in volumes) == sorted(spec.volumes)
    assert len(spec.volumes) == len(set(spec.volumes))
    for volume in volumes:
        assert volume.inputs["labels"] == labels, volume.name


def test_containers_depend_on_what_they_need_and_come_after_it(
    stack: tuple[str, StackRun],
) -> None:
    """Pulumi's dependency graph, from the registration requests: each container depends on
    the network, its volumes and its spec's `depends_on`, all registered before it."""
    name, run = stack
    by_urn = run.by_urn()
    position = {r.urn: i for i, r in enumerate(run.resources)}
    (network,) = run.of_type(NETWORK)
    for container in expected_spec(name).containers:
        (resource,) = [r for r in run.of_type(CONTAINER) if r.name == container.name]
        dependencies = {by_urn[urn].name for urn in resource.dependencies}
        assert dependencies == {network.name, *container.volumes, *container.depends_on}
        for urn in resource.dependencies:
            assert position[urn] < position[resource.urn], (container.name, by_urn[urn].name)
    # The order that matters, spelled out: workers after bootstrap after every broker,
    # the registry and the catalog; those after PostgreSQL (and the catalog after S3).
    spec = expected_spec(name)
    prefix = PREFIX[name]
    bootstrap = spec.container("bootstrap").depends_on
    brokers = {f"{prefix}-kafka-{i}" for i in range(BROKERS[name])}
    registries = {f"{prefix}-{registry}" for registry in registry_names(name)}
    assert brokers | registries | {f"{prefix}-iceberg-rest"} <= set(bootstrap)
    for registry in registry_names(name):
        assert set(spec.container(registry).depends_on) == {f"{prefix}-postgres"}
    assert set(spec.container("iceberg-rest").depends_on) == {
        f"{prefix}-postgres",
        f"{prefix}-seaweedfs",
    }
    for worker in workers(run).values():
        assert {by_urn[u].name for u in worker.dependencies} >= {f"{prefix}-bootstrap"}


def component_of(service: str) -> str:
    """The component a container's service belongs to (one per service role)."""
    if service.startswith("kafka"):  # the brokers and the ACL job
        return "kafka"
    if service.startswith("registry"):  # one instance or several
        return "registry"
    if service.startswith("ingest-worker-") or service == "bootstrap":
        return "workers"
    return {
        "postgres": "postgres",
        "seaweedfs": "objectstore",
        "registry": "registry",
        "iceberg-rest": "catalog",
        "prometheus": "monitoring",
        "grafana": "monitoring",
    }[service]


def test_containers_are_grouped_into_components(stack: tuple[str, StackRun]) -> None:
    _, run = stack
    by_urn = run.by_urn()
    for resource in run.of_type(CONTAINER):
        parent = by_urn[resource.parent]
        component = component_of(resource.inputs["hostname"])
        assert parent.name == component, resource.name
        assert parent.typ == dict(COMPONENTS.values())[component]
    (network,) = run.of_type(NETWORK)
    assert by_urn[network.parent].typ == "k2:network:Network"


# --- secrets and outputs -------------------------------------------------------------------


def test_envs_holding_a_secret_are_secret_inputs(stack: tuple[str, StackRun]) -> None:
    name, run = stack
    secrets = tuple(ALL_SECRETS.values())
    holding = set()
    for cname, resource in run.containers().items():
        env = env_of(resource)
        holds = any(s in value for value in env.values() for s in secrets)
        assert is_secret(resource.inputs.get("envs")) is holds, cname
        if holds:
            holding.add(cname.removeprefix(PREFIX[name] + "-"))
    # PostgreSQL, the object store, the registry, the catalog, the jobs and the workers.
    assert {"postgres", "seaweedfs", *registry_names(name), "iceberg-rest", "bootstrap"} <= holding
    assert set(w.removeprefix(PREFIX[name] + "-") for w in workers(run)) <= holding
    assert "prometheus" not in holding


def test_no_secret_outside_the_environment(stack: tuple[str, StackRun]) -> None:
    _, run = stack
    secrets = tuple(ALL_SECRETS.values())
    for resource in run.resources:
        others = {k: v for k, v in resource.inputs.items() if k != "envs"}
        text = str(plain(others))
        assert not any(s in text for s in secrets), resource.name


def test_outputs_are_the_k2_endpoint_names_credentials_secret(stack: tuple[str, StackRun]) -> None:
    name, run = stack
    names = set(operator_env_names())
    if name in SCRAM_STACKS:
        names |= set(kafka_security_env_names())
    assert {k for k in run.exports if k.startswith("K2_")} == names
    expected_secret = {
        "K2_S3_ACCESS_KEY_ID",
        "K2_S3_SECRET_ACCESS_KEY",
        "K2_POSTGRES_DSN",
        "K2_SCHEMA_REGISTRY_URL",  # carries the registry password as userinfo
        *catalog_credential_env_names(),
    }
    if name in SCRAM_STACKS:
        expected_secret.add("K2_KAFKA_SASL_PASSWORD")
    assert run.secret_exports == expected_secret == SECRET_OUTPUTS & names
    # The host's view of the stack: every stack publishes on loopback.
    host = host_endpoints(validated_config(name))
    assert {k: v for k, v in run.exports.items() if k in names} == {k: host[k] for k in names}
    bootstrap = ",".join(
        f"127.0.0.1:{19092 + 100 * i + OFFSET[name]}" for i in range(BROKERS[name])
    )
    assert run.exports["K2_KAFKA_BOOTSTRAP_SERVERS"] == bootstrap
    # Every registry instance, at its published port, in one comma-separated list.
    password = SECRETS["k2:registryPassword"]
    registries = ",".join(
        f"http://k2registry:{password}@127.0.0.1:{18081 + 10 * i + OFFSET[name]}/apis/ccompat/v7"
        for i in range(REGISTRIES[name])
    )
    assert run.exports["K2_SCHEMA_REGISTRY_URL"] == registries


def test_k2_processes_reach_the_services_by_alias(stack: tuple[str, StackRun]) -> None:
    """Workers and the bootstrap job get one in-network endpoint set; Grafana the same
    Prometheus."""
    name, run = stack
    envs = [env_of(w) for w in workers(run).values()]
    envs.append(env_of(named(run, name, "bootstrap")))
    endpoint_sets = [{k: env[k] for k in endpoint_env_names()} for env in envs]
    first = endpoint_sets[0]
    assert all(env == first for env in endpoint_sets)
    brokers = ",".join(f"kafka-{i}:9092" for i in range(BROKERS[name]))
    password = SECRETS["k2:registryPassword"]
    registries = ",".join(
        f"http://k2registry:{password}@{registry}:18081/apis/ccompat/v7"
        for registry in registry_names(name)
    )
    assert first == {
        "K2_KAFKA_BOOTSTRAP_SERVERS": brokers,
        "K2_SCHEMA_REGISTRY_URL": registries,
        "K2_ICEBERG_CATALOG_URI": "http://iceberg-rest:18181",
        "K2_S3_ENDPOINT": "http://seaweedfs:18333",
        "K2_S3_ACCESS_KEY_ID": SECRETS["k2:s3AccessKeyId"],
        "K2_S3_SECRET_ACCESS_KEY": SECRETS["k2:s3SecretAccessKey"],
        "K2_PROMETHEUS_URL": "http://prometheus:19090",
    }
    # The catalog database's DSN would bypass the catalog's authorisation: never in a K2
    # container (the catalog and the registry get their password as K2_SERVE_* only).
    assert not any("K2_POSTGRES_DSN" in env for env in envs)
    if name != "ci":
        grafana = env_of(named(run, name, "grafana"))
        assert grafana["K2_PROMETHEUS_URL"] == first["K2_PROMETHEUS_URL"]


def test_cluster_stack_has_the_shape_of_the_local_cluster_profile() -> None:
    """Pulumi.cluster.yaml and `k2-stack up --profile cluster` describe one cluster."""
    config = validated_config("cluster")
    layout = LAYOUTS[Profile.CLUSTER]
    declared = (
        config.kafka_brokers,
        config.replication_factor,
        config.min_insync_replicas,
        config.registry_replicas,
    )
    assert declared == (
        layout.kafka_brokers,
        layout.replication_factor,
        layout.min_insync_replicas,
        layout.registry_replicas,
    )
