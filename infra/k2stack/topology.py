"""The one typed definition of K2's stack.

Both the local backend (native processes on 127.0.0.1) and the Pulumi program (Docker) read
this module: every service's version, image, ports, static environment, health probe,
dependencies and data directories is written here once and nowhere else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from k2.settings import S3_REGION, CatalogPrincipal, Endpoints

LOOPBACK = "127.0.0.1"
# K2's own images are named `k2/<service>:<version>`; they are built locally, never pulled.
K2_IMAGE_REPOSITORY = "k2"


class ServiceName(StrEnum):
    """Every service of the stack, in start order."""

    POSTGRES = "postgres"
    SEAWEEDFS = "seaweedfs"
    KAFKA = "kafka"
    REGISTRY = "registry"
    ICEBERG_REST = "iceberg-rest"
    PROMETHEUS = "prometheus"


class Probe(BaseModel):
    """A health probe: what "healthy" means for a service.

    kind:
      tcp       the port accepts a connection;
      http      GET `path` on the port answers `expect_status`;
      kafka     a Kafka admin client lists topics through the port;
      postgres  a SQL `SELECT 1` succeeds through the port.
    """

    model_config = ConfigDict(frozen=True)

    kind: Literal["tcp", "http", "kafka", "postgres"]
    port: str
    path: str = "/"
    expect_status: int = 200
    timeout_s: float = Field(default=120.0, gt=0)
    # http only: send the stack's registry credentials (HTTP basic) when it has them.
    registry_auth: bool = False
    # http only: authenticate to the Iceberg catalog first (a bearer token, query principal).
    catalog_auth: bool = False


class MetricsEndpoint(BaseModel):
    """Where Prometheus scrapes a service."""

    model_config = ConfigDict(frozen=True)

    port: str
    path: str = "/metrics"


class ServiceSpec(BaseModel):
    """One service of the stack."""

    model_config = ConfigDict(frozen=True)

    name: ServiceName
    description: str
    version: str
    # The upstream project's own image (pinned tag): selectable in the Pulumi program with
    # `k2:images: upstream`, untested here (no image registry is reachable from our machines).
    # By default the Docker stack runs K2's own image of the service (`image`), built from the
    # same artifacts the local backend runs and started by the same launcher.
    upstream_image: str
    # Port name -> port. For Docker these are the container ports; the local backend uses
    # them as the default host ports of the persistent stack (ephemeral stacks pick free ones).
    ports: Mapping[str, int]
    # Non-secret environment common to both backends.
    env: Mapping[str, str] = Field(default_factory=dict)
    health: Probe
    depends_on: tuple[ServiceName, ...] = ()
    data_dirs: tuple[str, ...] = ("data",)
    # Memory limit (MiB): -Xmx for JVMs, a Docker memory limit for containers.
    memory_mb: int
    metrics: MetricsEndpoint | None = None

    @property
    def image(self) -> str:
        """K2's own image of this service (built by `k2stack.docker.images`)."""
        return f"{K2_IMAGE_REPOSITORY}/{self.name.value}:{self.version}"


# Credentials and database names are not secrets; passwords and keys are generated per stack.
POSTGRES_USER = "k2"
CATALOG_DATABASE = "iceberg_catalog"
REGISTRY_DATABASE = "schema_registry"
WAREHOUSE_BUCKET = "warehouse"
REGISTRY_COMPATIBILITY = "BACKWARD_TRANSITIVE"
CCOMPAT_PATH = "/apis/ccompat/v7"

TOPOLOGY: tuple[ServiceSpec, ...] = (
    ServiceSpec(
        name=ServiceName.POSTGRES,
        description="PostgreSQL: the Iceberg catalog's and the schema registry's storage",
        version="15",
        upstream_image="postgres:15.18-bookworm",
        ports={"sql": 15432},
        health=Probe(kind="postgres", port="sql"),
        memory_mb=512,
    ),
    ServiceSpec(
        name=ServiceName.SEAWEEDFS,
        description="SeaweedFS: S3 object storage for the Iceberg warehouse",
        version="4.48",
        upstream_image="chrislusf/seaweedfs:4.48",
        ports={
            "s3": 18333,
            "s3_grpc": 28333,
            "master": 19333,
            "master_grpc": 29333,
            "volume": 18380,
            "volume_grpc": 28380,
            "filer": 18888,
            "filer_grpc": 28888,
            # weed mini's admin server cannot be turned off, and its worker dials the admin's
            # gRPC port at admin + 10000 whatever -admin.port.grpc says (seen with 4.48).
            "admin": 13646,
            "admin_grpc": 23646,
        },
        health=Probe(kind="http", port="s3", path="/healthz"),
        memory_mb=1024,
    ),
    ServiceSpec(
        name=ServiceName.KAFKA,
        description="Apache Kafka in KRaft mode (single node locally)",
        version="4.4.0",
        upstream_image="apache/kafka:4.4.0",
        ports={"broker": 19092, "controller": 19093},
        health=Probe(kind="kafka", port="broker"),
        memory_mb=1024,
    ),
    ServiceSpec(
        name=ServiceName.REGISTRY,
        description="Apicurio Registry: Confluent-compatible schema registry on PostgreSQL",
        version="3.3.3",
        upstream_image="apicurio/apicurio-registry:3.3.3",
        ports={"http": 18081, "management": 19000},
        # Quarkus starts Apicurio in ~20 s on an idle 2-core machine, but took 124 s in a CI
        # run with three Docker stacks starting at once: the liveness bound allows for that.
        health=Probe(
            kind="http",
            port="http",
            path=CCOMPAT_PATH + "/subjects",
            registry_auth=True,
            timeout_s=240.0,
        ),
        depends_on=(ServiceName.POSTGRES,),
        data_dirs=(),
        memory_mb=768,
    ),
    ServiceSpec(
        name=ServiceName.ICEBERG_REST,
        description="Apache Iceberg REST catalog: JDBC catalog on PostgreSQL, S3FileIO on SeaweedFS",
        version="1.10.0",
        upstream_image="apache/iceberg-rest-fixture:1.10.0",
        ports={"http": 18181},
        env={"AWS_REGION": S3_REGION, "CATALOG_CLIENT_REGION": S3_REGION},
        # Authenticated: proves the token endpoint, the signing key and the backend catalog.
        health=Probe(kind="http", port="http", path="/v1/config", catalog_auth=True),
        depends_on=(ServiceName.POSTGRES, ServiceName.SEAWEEDFS),
        data_dirs=(),
        memory_mb=768,
    ),
    ServiceSpec(
        name=ServiceName.PROMETHEUS,
        description="Prometheus: scrapes K2's workers and the stack",
        version="2.42.0",
        upstream_image="prom/prometheus:v2.42.0",
        ports={"http": 19090},
        health=Probe(kind="http", port="http", path="/-/ready"),
        memory_mb=512,
        metrics=MetricsEndpoint(port="http"),
    ),
)

SERVICES: Mapping[ServiceName, ServiceSpec] = {spec.name: spec for spec in TOPOLOGY}

# Kafka's in-network listener in the Docker stack: containers reach brokers by alias on this
# port, while the topology's "broker" port is the listener advertised to the host.
KAFKA_DOCKER_INTERNAL_PORT = 9092


class DockerOnlySpec(BaseModel):
    """A service only the Docker stack runs: it has no native package on our machines."""

    model_config = ConfigDict(frozen=True)

    name: str
    description: str
    version: str
    image: str
    ports: Mapping[str, int]
    health: Probe
    memory_mb: int


GRAFANA = DockerOnlySpec(
    name="grafana",
    description="Grafana: K2's dashboards, provisioned from files (Docker stack only)",
    version="12.2.0",
    image="grafana/grafana:12.2.0",
    ports={"http": 13000},
    health=Probe(kind="http", port="http", path="/api/health"),
    memory_mb=256,
)

# Optional (k2:kafkaUi, off by default): no Kafka web UI is published on a registry K2's machines
# reach (kafbat's app, AKHQ and Kafdrop are not on Maven Central; Redpanda Console's Go module is
# not served), so it runs only by image, and has never run where K2 is developed.
KAFKA_UI = DockerOnlySpec(
    name="kafka-ui",
    description="kafbat UI for Apache Kafka: topics, consumer groups, dead letters (Docker only)",
    version="1.5.0",
    image="kafbat/kafka-ui:v1.5.0",
    ports={"http": 18080},
    health=Probe(kind="http", port="http", path="/actuator/health"),
    memory_mb=512,
)


class Profile(StrEnum):
    """The shapes a stack comes in: one of each service, or the cluster every production user
    runs (three Kafka brokers, replication factor 3, min ISR 2, two registry instances)."""

    SINGLE = "single"
    CLUSTER = "cluster"


class Layout(BaseModel):
    """How many processes of each replicated service a stack runs, Kafka's replication, and
    the heap (MiB) of each replica where it differs from the service's `memory_mb`.

    Read by the local backend (`k2-stack up --profile cluster`) and checked against the Pulumi
    `cluster` stack's config (`Pulumi.cluster.yaml`), so the two describe one cluster.
    """

    model_config = ConfigDict(frozen=True)

    kafka_brokers: int = Field(default=1, ge=1)
    registry_replicas: int = Field(default=1, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    min_insync_replicas: int = Field(default=1, ge=1)
    memory_mb: Mapping[ServiceName, int] = Field(default_factory=dict)

    def replicas(self, service: ServiceName) -> int:
        """How many processes of `service` run (1 for every unreplicated service)."""
        if service is ServiceName.KAFKA:
            return self.kafka_brokers
        if service is ServiceName.REGISTRY:
            return self.registry_replicas
        return 1

    def heap_mb(self, service: ServiceName) -> int:
        """The heap limit of one process of `service`."""
        return self.memory_mb.get(service, SERVICES[service].memory_mb)


LAYOUTS: Mapping[Profile, Layout] = {
    Profile.SINGLE: Layout(),
    Profile.CLUSTER: Layout(
        kafka_brokers=3,
        registry_replicas=2,
        replication_factor=3,
        min_insync_replicas=2,
        # Three brokers and two registries share a 2-core, 24 GiB machine with everything
        # else: half the single node's heaps. Measured idle RSS of the whole profile: see
        # the README (about 2 GiB).
        memory_mb={ServiceName.KAFKA: 512, ServiceName.REGISTRY: 512},
    ),
}


def replica_name(service: ServiceName, index: int, replicas: int) -> str:
    """A process's name: the service's own when it runs once, else `<service>-<index>`."""
    return service.value if replicas == 1 else f"{service.value}-{index}"


def start_order() -> tuple[ServiceSpec, ...]:
    """Services in an order where each comes after everything it depends on."""
    ordered: list[ServiceSpec] = []
    seen: set[ServiceName] = set()

    def visit(spec: ServiceSpec, path: tuple[ServiceName, ...]) -> None:
        if spec.name in seen:
            return
        if spec.name in path:
            raise ValueError(f"dependency cycle: {' -> '.join([*path, spec.name])}")
        for dep in spec.depends_on:
            visit(SERVICES[dep], (*path, spec.name))
        seen.add(spec.name)
        ordered.append(spec)

    for spec in TOPOLOGY:
        visit(spec, ())
    return tuple(ordered)


class Credentials(BaseModel):
    """A stack's generated secrets.

    The registry's user and password are optional: a stack without them runs the registry
    without authentication (the Docker stack today); with them the registry requires HTTP
    basic auth and `K2_SCHEMA_REGISTRY_URL` carries them as URL userinfo, which
    confluent-kafka's registry client (and httpx) turn into the Authorization header.
    """

    model_config = ConfigDict(frozen=True)

    postgres_password: str
    s3_access_key_id: str
    s3_secret_access_key: str
    registry_user: str | None = None
    registry_password: str | None = None
    # The Iceberg catalog's token-signing key and each principal's secret, by principal name
    # (`k2stack.catalog_auth`). A stack made before the catalog required them gets them on
    # its next start; the catalog refuses to serve without them.
    catalog_token_key: str | None = None
    catalog_secrets: Mapping[str, str] = Field(default_factory=dict)
    # Kafka SCRAM passwords by user name (`k2stack.kafka_security.PRINCIPALS`): the local
    # cluster profile formats its nodes with them. Empty: Kafka listens PLAINTEXT.
    kafka_scram_passwords: Mapping[str, str] = Field(default_factory=dict)

    def catalog_credential(self, principal: CatalogPrincipal) -> str | None:
        """`principal`'s catalog credential (`k2-<principal>:<secret>`), if the stack has it."""
        secret = self.catalog_secrets.get(principal.value)
        return f"{principal.client_id}:{secret}" if secret else None

    def registry_basic_auth(self) -> tuple[str, str] | None:
        """(user, password) when the registry requires authentication."""
        if self.registry_user and self.registry_password:
            return self.registry_user, self.registry_password
        return None


def endpoints(
    host_ports: Mapping[ServiceName, Mapping[str, int]],
    credentials: Credentials,
    host: str = LOOPBACK,
    service_hosts: Mapping[ServiceName, str] | None = None,
    replicas: Mapping[ServiceName, Sequence[tuple[str, Mapping[str, int]]]] | None = None,
) -> dict[str, str]:
    """The `K2_*` endpoint variables of a stack, keyed by their variable names.

    The one place that turns ports into URLs: `task stack:env`, the test fixture and the
    Pulumi outputs all call it. `service_hosts` gives a service its own host name (inside a
    Docker network every service is reached by its alias); others use `host`. `replicas`
    gives each process of a replicated service as (host, ports): Kafka's become the bootstrap
    list, the registry's a comma-separated URL list (`k2.settings.registry_urls`).
    """
    hosts = service_hosts or {}
    every = replicas or {}

    def port(service: ServiceName, name: str) -> str:
        return f"{hosts.get(service, host)}:{host_ports[service][name]}"

    def addresses(service: ServiceName, name: str) -> list[str]:
        if service in every:
            return [f"{where}:{ports[name]}" for where, ports in every[service]]
        return [port(service, name)]

    auth = credentials.registry_basic_auth()
    # User names and passwords are generated URL-safe: userinfo needs no quoting.
    userinfo = f"{auth[0]}:{auth[1]}@" if auth else ""
    values = Endpoints(
        kafka_bootstrap_servers=",".join(addresses(ServiceName.KAFKA, "broker")),
        schema_registry_url=",".join(
            f"http://{userinfo}{address}{CCOMPAT_PATH}"
            for address in addresses(ServiceName.REGISTRY, "http")
        ),
        iceberg_catalog_uri=f"http://{port(ServiceName.ICEBERG_REST, 'http')}",
        s3_endpoint=f"http://{port(ServiceName.SEAWEEDFS, 's3')}",
        s3_access_key_id=credentials.s3_access_key_id,
        s3_secret_access_key=credentials.s3_secret_access_key,
        postgres_dsn=(
            f"postgresql://{POSTGRES_USER}:{credentials.postgres_password}"
            f"@{port(ServiceName.POSTGRES, 'sql')}/{CATALOG_DATABASE}"
        ),
        prometheus_url=f"http://{port(ServiceName.PROMETHEUS, 'http')}",
        iceberg_admin_credential=credentials.catalog_credential(CatalogPrincipal.ADMIN),
        iceberg_ingest_credential=credentials.catalog_credential(CatalogPrincipal.INGEST),
        iceberg_maintain_credential=credentials.catalog_credential(CatalogPrincipal.MAINTAIN),
        iceberg_query_credential=credentials.catalog_credential(CatalogPrincipal.QUERY),
    )
    return values.as_env()
