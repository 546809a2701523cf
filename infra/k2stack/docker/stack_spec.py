"""The one function that says what a Docker stack is: `stack_spec(config) -> StackSpec`.

The Pulumi program declares exactly these containers (through either provider) and the
Docker backend of `k2-stack` applies exactly these (`k2stack.docker.apply`); a test checks
the two are equal. Every service container runs K2's own image of that service, started by
the local backend's launcher (`k2-stack serve`, `k2stack.serve`) and probed by it
(`k2-stack probe`); the ingest workers and the bootstrap job run K2's worker image.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic.alias_generators import to_snake

from k2.contracts.catalogue import load_catalogue
from k2.settings import CatalogPrincipal
from k2stack import kafka_security as sasl
from k2stack.docker import aliases
from k2stack.docker.spec import STACK_LABEL, ContainerSpec, Healthcheck, PortBinding, StackSpec
from k2stack.observability import WORKER_METRICS_PATH, WORKER_METRICS_PORT
from k2stack.pulumi.config import KafkaSecurity, StackConfig
from k2stack.serve import CONTAINER_STATE_DIR, SERVE_ENV_PREFIX
from k2stack.topology import (
    GRAFANA,
    K2_IMAGE_REPOSITORY,
    LOOPBACK,
    SERVICES,
    Credentials,
    ServiceName,
    ServiceSpec,
    endpoints,
)

WORKER_IMAGE_NAME = f"{K2_IMAGE_REPOSITORY}/ingest-worker"
WORKER_MEMORY_MB = 1024
BOOTSTRAP_MEMORY_MB = 512
GRAFANA_PROVISIONING = "/etc/grafana/provisioning"
GRAFANA_DASHBOARDS = "/var/lib/grafana/dashboards/k2"
# The JVMs' heap is the topology's memory figure (-Xmx); the container also holds metaspace,
# thread stacks, direct buffers and the `serve` supervisor (~40 MB of Python).
JVM_OVERHEAD_FACTOR = 1.5
CONTAINER_OVERHEAD_MB = 256

S = ServiceName


def k2_image(service: ServiceName) -> str:
    return SERVICES[service].image


def worker_image(version: str) -> str:
    return f"{WORKER_IMAGE_NAME}:{version}"


def container_memory_mb(spec: ServiceSpec) -> int:
    return int(spec.memory_mb * JVM_OVERHEAD_FACTOR) + CONTAINER_OVERHEAD_MB


def credentials(config: StackConfig) -> Credentials:
    return Credentials(
        postgres_password=config.postgres_password.get_secret_value(),
        s3_access_key_id=config.s3_access_key_id.get_secret_value(),
        s3_secret_access_key=config.s3_secret_access_key.get_secret_value(),
        registry_user=config.registry_user,
        registry_password=config.registry_password.get_secret_value(),
        catalog_token_key=config.catalog_token_key.get_secret_value(),
        catalog_secrets=catalog_secrets(config),
    )


POSTGRES_DSN_ENV = "K2_POSTGRES_DSN"


def catalog_secrets(config: StackConfig) -> dict[str, str]:
    """Each catalog principal's secret by principal name (`Credentials.catalog_secrets`)."""
    return {
        p.value: getattr(config, f"catalog_{p.value}_secret").get_secret_value()
        for p in CatalogPrincipal
    }


def only_catalog_credential(env: Mapping[str, str], principal: CatalogPrincipal) -> dict[str, str]:
    """`env` with every catalog credential but `principal`'s removed, and the catalog
    database's DSN (it would bypass the catalog's authorisation): a K2 container holds only the
    credential of the principal its command acts as."""
    others = {p.env_name for p in CatalogPrincipal if p is not principal}
    return {k: v for k, v in env.items() if k not in others and k != POSTGRES_DSN_ENV}


def host_ports(config: StackConfig) -> dict[ServiceName, dict[str, int]]:
    """Each service's ports as the host reaches them (published on `publishAddress`)."""
    ports = {
        name: {k: v + config.port_offset for k, v in s.ports.items()}
        for name, s in SERVICES.items()
    }
    ports[S.KAFKA]["broker"] = aliases.kafka_external_port(0, config.port_offset)
    return ports


def registry_replicas(
    config: StackConfig, host: str | None = None
) -> dict[ServiceName, list[tuple[str, Mapping[str, int]]]]:
    """Each registry instance as (host, ports) for `topology.endpoints` (none with one): on the
    host (`host` given) at its published port, else on the network by its alias."""
    count = config.registry_replicas
    if count == 1:
        return {}
    if host is not None:
        published = [aliases.registry_published_port(i, config.port_offset) for i in range(count)]
        return {S.REGISTRY: [(host, {"http": port}) for port in published]}
    in_network = aliases.in_network_ports()[S.REGISTRY]
    return {S.REGISTRY: [(aliases.registry_alias(i, count), in_network) for i in range(count)]}


def host_endpoints(config: StackConfig) -> dict[str, str]:
    """The `K2_*` variables for clients on the host (the stack's published ports); with SCRAM,
    operators and tests act as the admin principal."""
    env = endpoints(
        host_ports(config),
        credentials(config),
        host=config.publish_address,
        replicas=registry_replicas(config, config.publish_address),
    )
    bootstrap = ",".join(
        f"{config.publish_address}:{aliases.kafka_external_port(i, config.port_offset)}"
        for i in range(config.kafka_brokers)
    )
    return {
        **env,
        "K2_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        **kafka_client_env(config, sasl.ADMIN),
    }


def network_endpoints(config: StackConfig) -> dict[str, str]:
    """The `K2_*` variables for containers on the stack network (aliases, container ports)."""
    env = endpoints(
        aliases.in_network_ports(),
        credentials(config),
        service_hosts=aliases.in_network_hosts(),
        replicas=registry_replicas(config),
    )
    bootstrap = ",".join(
        f"{aliases.broker_alias(i)}:{aliases.in_network_ports()[S.KAFKA]['broker']}"
        for i in range(config.kafka_brokers)
    )
    return {**env, "K2_KAFKA_BOOTSTRAP_SERVERS": bootstrap}


class _Builder:
    def __init__(self, config: StackConfig, worker_version: str) -> None:
        self.config = config
        self.worker_version = worker_version
        self.prefix = config.name_prefix
        self.network = f"{self.prefix}-net"
        self.labels = {STACK_LABEL: self.prefix}
        self.volumes: list[str] = []
        self.containers: list[ContainerSpec] = []

    def name(self, service: str) -> str:
        return f"{self.prefix}-{service}"

    def volume(self, service: str) -> dict[str, str]:
        """A named volume for a service's state, mounted where `serve` keeps it."""
        name = self.name(f"{service}-data")
        self.volumes.append(name)
        return {name: str(CONTAINER_STATE_DIR)}

    def publish(self, *ports: int) -> tuple[PortBinding, ...]:
        if not self.config.publish_ports:
            return ()
        return tuple(
            PortBinding(
                container_port=port,
                host_port=port + self.config.port_offset,
                host_ip=self.config.publish_address,
            )
            for port in ports
        )

    def publish_at(self, container_port: int, host_port: int) -> tuple[PortBinding, ...]:
        """A container port on a host port of its own (the stack's offset included)."""
        if not self.config.publish_ports:
            return ()
        return (
            PortBinding(
                container_port=container_port,
                host_port=host_port,
                host_ip=self.config.publish_address,
            ),
        )

    def publish_as_is(self, port: int) -> tuple[PortBinding, ...]:
        """The same port number inside and out (Kafka advertises the port it listens on)."""
        if not self.config.publish_ports:
            return ()
        return (
            PortBinding(container_port=port, host_port=port, host_ip=self.config.publish_address),
        )

    def service(
        self,
        name: ServiceName,
        *,
        container: str | None = None,
        env: Mapping[str, str] = {},
        secret: frozenset[str] = frozenset(),
        ports: tuple[PortBinding, ...] = (),
        extra_aliases: tuple[str, ...] = (),
        depends_on: tuple[str, ...] = (),
    ) -> ContainerSpec:
        """One of the topology's services, run by K2's image of it."""
        spec = SERVICES[name]
        service = container or name.value
        result = ContainerSpec(
            name=self.name(service),
            service=service,
            image=k2_image(name),
            command=("k2-stack", "serve", name.value),
            env={f"{SERVE_ENV_PREFIX}{k.upper()}": v for k, v in env.items()},
            secret_env=frozenset(f"{SERVE_ENV_PREFIX}{k.upper()}" for k in secret),
            ports=ports,
            volumes=self.volume(service) if spec.data_dirs else {},
            network=self.network,
            hostname=service,
            aliases=(service, *extra_aliases),
            healthcheck=Healthcheck(
                test=("CMD", "k2-stack", "probe", name.value),
                retries=int(spec.health.timeout_s / 5),
            ),
            depends_on=depends_on,
            memory_mb=container_memory_mb(spec),
            labels=self.labels,
            wait_timeout_s=int(spec.health.timeout_s) + 60,
        )
        self.containers.append(result)
        return result

    def k2_env(
        self, principal: sasl.Principal, catalog: CatalogPrincipal
    ) -> tuple[dict[str, str], frozenset[str]]:
        """The in-network `K2_*` endpoints for a K2 process acting as `principal` on Kafka and
        `catalog` on the Iceberg catalog (all secret: the registry URL carries a password)."""
        env = {
            **only_catalog_credential(network_endpoints(self.config), catalog),
            **kafka_client_env(self.config, principal),
        }
        return env, frozenset(env)

    def job(
        self,
        service: str,
        command: tuple[str, ...],
        principal: sasl.Principal,
        catalog: CatalogPrincipal,
        after: tuple[str, ...],
    ) -> ContainerSpec:
        """A one-shot job on K2's worker image (must exit 0 once)."""
        env, secret = self.k2_env(principal, catalog)
        spec = ContainerSpec(
            name=self.name(service),
            service=service,
            image=worker_image(self.worker_version),
            command=command,
            env=env,
            secret_env=secret,
            network=self.network,
            hostname=service,
            depends_on=after,
            memory_mb=BOOTSTRAP_MEMORY_MB,
            job=True,
            restart="no",
            labels=self.labels,
        )
        self.containers.append(spec)
        return spec


def stack_spec(config: StackConfig, worker_version: str) -> StackSpec:
    """Every network, volume and container of the stack `config` describes, in start order."""
    b = _Builder(config, worker_version)
    c = config
    pg_password = c.postgres_password.get_secret_value()
    s3_key = c.s3_access_key_id.get_secret_value()
    s3_secret = c.s3_secret_access_key.get_secret_value()
    postgres = b.service(
        S.POSTGRES,
        env={"postgres_password": pg_password},
        secret=frozenset({"postgres_password"}),
        ports=b.publish(SERVICES[S.POSTGRES].ports["sql"]),
    )
    seaweedfs = b.service(
        S.SEAWEEDFS,
        env={"s3_access_key_id": s3_key, "s3_secret_access_key": s3_secret},
        secret=frozenset({"s3_access_key_id", "s3_secret_access_key"}),
        ports=b.publish(SERVICES[S.SEAWEEDFS].ports["s3"]),
    )
    brokers = [
        b.service(
            S.KAFKA,
            container=aliases.broker_alias(i),
            env={**_kafka_env(c, i), **_kafka_secrets(c)},
            secret=frozenset(_kafka_secrets(c)),
            ports=b.publish_as_is(aliases.kafka_external_port(i, c.port_offset)),
            extra_aliases=(aliases.KAFKA_ALIAS,),
        )
        for i in range(c.kafka_brokers)
    ]
    # Several instances share the one PostgreSQL (the registry's store): each its own
    # container, alias and published port; clients get every URL and fail over.
    registries = [
        b.service(
            S.REGISTRY,
            container=aliases.registry_alias(i, c.registry_replicas),
            env={
                "postgres_password": pg_password,
                "registry_user": c.registry_user,
                "registry_password": c.registry_password.get_secret_value(),
            },
            secret=frozenset({"postgres_password", "registry_password"}),
            ports=b.publish_at(
                SERVICES[S.REGISTRY].ports["http"],
                aliases.registry_published_port(i, c.port_offset),
            ),
            # With several, each also answers the service's own alias (round robin in DNS).
            extra_aliases=(aliases.alias(S.REGISTRY),) if c.registry_replicas > 1 else (),
            depends_on=(postgres.name,),
        )
        for i in range(c.registry_replicas)
    ]
    catalog_auth = {
        "catalog_token_key": c.catalog_token_key.get_secret_value(),
        **{f"catalog_{name}_secret": value for name, value in catalog_secrets(c).items()},
    }
    catalog = b.service(
        S.ICEBERG_REST,
        env={
            "postgres_password": pg_password,
            "s3_access_key_id": s3_key,
            "s3_secret_access_key": s3_secret,
            **catalog_auth,
        },
        secret=frozenset(
            {"postgres_password", "s3_access_key_id", "s3_secret_access_key", *catalog_auth}
        ),
        ports=b.publish(SERVICES[S.ICEBERG_REST].ports["http"]),
        depends_on=(postgres.name, seaweedfs.name),
    )
    prometheus = b.service(
        S.PROMETHEUS,
        env={
            "worker_alias": aliases.WORKER_ALIAS,
            "worker_metrics_port": str(WORKER_METRICS_PORT),
        },
        ports=b.publish(SERVICES[S.PROMETHEUS].ports["http"]),
    )
    if c.grafana:
        _grafana(b, prometheus)
    if c.kafka_ui:
        from k2stack.docker.kafka_ui import kafka_ui_container  # only a stack with the UI

        b.containers.append(kafka_ui_container(b, [broker.name for broker in brokers]))
    kafka_ready = tuple(x.name for x in brokers)
    if scram(c):
        acls = b.job(
            "kafka-acls",
            ("k2-stack", "kafka-acls"),
            sasl.ADMIN,
            # Touches no table: the least catalog principal.
            CatalogPrincipal.QUERY,
            kafka_ready,
        )
        kafka_ready = (*kafka_ready, acls.name)
    # The bootstrap job creates topics: the admin principal.
    # ... and the tables: the catalog's admin.
    bootstrap = b.job(
        "bootstrap",
        # Topics get the stack's replication factor (the catalogue's default is one replica).
        ("k2", "bootstrap", "--replication", str(c.replication_factor)),
        sasl.ADMIN,
        CatalogPrincipal.ADMIN,
        (*kafka_ready, *(registry.name for registry in registries), catalog.name),
    )
    k2_env, k2_secret = b.k2_env(sasl.INGEST, CatalogPrincipal.INGEST)
    for table in sorted(load_catalogue().datasets):
        for i in range(c.worker_replicas):
            service = f"{aliases.WORKER_ALIAS}-{table.replace('_', '-')}-{i}"
            b.containers.append(
                ContainerSpec(
                    name=b.name(service),
                    service=service,
                    image=worker_image(worker_version),
                    command=(
                        "k2",
                        "ingest",
                        "run",
                        "--table",
                        table,
                        "--metrics-port",
                        str(WORKER_METRICS_PORT),
                    ),
                    env=k2_env,
                    secret_env=k2_secret,
                    network=b.network,
                    hostname=service,
                    aliases=(service, aliases.WORKER_ALIAS),
                    healthcheck=Healthcheck(test=WORKER_HEALTHCHECK, retries=24),
                    depends_on=(bootstrap.name,),
                    memory_mb=WORKER_MEMORY_MB,
                    labels=b.labels,
                )
            )
    return StackSpec(
        prefix=b.prefix,
        network=b.network,
        volumes=tuple(b.volumes),
        containers=tuple(b.containers),
        labels=b.labels,
    )


# The worker image has no curl or wget: the probe runs through its Python.
WORKER_HEALTHCHECK = (
    "CMD",
    "python",
    "-c",
    "import urllib.request; urllib.request.urlopen("
    f"'http://{LOOPBACK}:{WORKER_METRICS_PORT}{WORKER_METRICS_PATH}', timeout=4)",
)


def scram(config: StackConfig) -> bool:
    return config.kafka_security is KafkaSecurity.SCRAM


def kafka_passwords(config: StackConfig) -> dict[str, str]:
    """Each SCRAM principal's password by its config key (empty without SCRAM)."""
    if not scram(config):
        return {}
    out: dict[str, str] = {}
    for principal in sasl.PRINCIPALS:
        value = getattr(config, to_snake(principal.config_key))
        if value is not None:
            out[principal.config_key] = value.get_secret_value()
    return out


def kafka_client_env(config: StackConfig, principal: sasl.Principal) -> dict[str, str]:
    """`K2_KAFKA_*` for a K2 process acting as `principal` (none without SCRAM)."""
    passwords = kafka_passwords(config)
    if not passwords:
        return {}
    return sasl.client_env(principal, passwords[principal.config_key])


def _kafka_secrets(config: StackConfig) -> dict[str, str]:
    """The brokers' `K2_SERVE_KAFKA_SCRAM_*_PASSWORD` settings (names as in ServeSettings)."""
    return {
        f"kafka_scram_{p.user.removeprefix('k2-')}_password": password
        for p in sasl.PRINCIPALS
        if (password := kafka_passwords(config).get(p.config_key)) is not None
    }


def _kafka_env(config: StackConfig, index: int) -> dict[str, str]:
    env = {
        "kafka_node_id": str(index),
        "kafka_brokers": str(config.kafka_brokers),
        "kafka_cluster_id": config.kafka_cluster_id,
        "kafka_replication_factor": str(config.replication_factor),
        "kafka_min_insync_replicas": str(config.min_insync_replicas),
    }
    if config.publish_ports:
        env["kafka_external_port"] = str(aliases.kafka_external_port(index, config.port_offset))
        env["kafka_advertised_host"] = config.publish_address
    return env


def _grafana(b: _Builder, prometheus: ContainerSpec) -> None:
    """Grafana: the upstream image (no K2 image: Grafana is not packaged where we build)."""
    from k2stack.observability import GRAFANA_DIR, dashboard_files

    provisioning = GRAFANA_DIR / "provisioning"
    uploads = {
        f"{GRAFANA_PROVISIONING}/{path.relative_to(provisioning)}": path.read_text()
        for path in sorted(provisioning.rglob("*.yml"))
    }
    uploads.update({f"{GRAFANA_DASHBOARDS}/{p.name}": p.read_text() for p in dashboard_files()})
    port = GRAFANA.ports["http"]
    prometheus_url = network_endpoints(b.config)["K2_PROMETHEUS_URL"]
    b.containers.append(
        ContainerSpec(
            name=b.name(GRAFANA.name),
            service=GRAFANA.name,
            image=GRAFANA.image,
            env={
                "GF_SERVER_HTTP_PORT": str(port),
                "GF_SECURITY_ADMIN_USER": "admin",
                "GF_SECURITY_ADMIN_PASSWORD": b.config.grafana_admin_password.get_secret_value(),
                "GF_AUTH_ANONYMOUS_ENABLED": "false",
                "GF_ANALYTICS_REPORTING_ENABLED": "false",
                "K2_PROMETHEUS_URL": prometheus_url,
            },
            secret_env=frozenset({"GF_SECURITY_ADMIN_PASSWORD"}),
            ports=b.publish(port),
            volumes={b.name("grafana-data"): "/var/lib/grafana"},
            uploads=uploads,
            network=b.network,
            hostname=GRAFANA.name,
            aliases=(GRAFANA.name,),
            healthcheck=Healthcheck(
                test=(
                    "CMD",
                    "wget",
                    "-q",
                    "-O",
                    "/dev/null",
                    f"http://{LOOPBACK}:{port}/api/health",
                )
            ),
            depends_on=(prometheus.name,),
            memory_mb=GRAFANA.memory_mb,
            labels=b.labels,
        )
    )
    b.volumes.append(b.name("grafana-data"))
