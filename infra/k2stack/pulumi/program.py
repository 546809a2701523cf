"""K2's Pulumi program: the stack spec's objects declared as resources, and the outputs.

`declare()` is the whole program. `infra/__main__.py` calls it for `pulumi up` of the
Pulumi.yaml project; `k2stack.pulumi.automation` runs it inline through the Automation API
(where Python's language host cannot be had). What the stack contains is decided once, by
`k2stack.docker.stack_spec.stack_spec`; this module only groups it into components, picks
the provider (`k2:dockerProvider`) and exports the `K2_*` endpoints.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import metadata

import pulumi

from k2.settings import (
    KAFKA_ENV_PREFIX,
    SECRET_ENDPOINT_FIELDS,
    kafka_security_env_names,
    operator_env_names,
)
from k2stack.docker.spec import ContainerSpec, StackSpec
from k2stack.docker.stack_spec import host_endpoints, network_endpoints, scram, stack_spec
from k2stack.pulumi import config as stack_config
from k2stack.pulumi.config import DockerProvider, StackConfig
from k2stack.pulumi.resources import DockerResources

# Outputs that carry a credential stay Pulumi secrets; the rest are plain. The registry URL
# carries the registry user's password as userinfo.
SECRET_OUTPUTS = frozenset(
    {"K2_" + field.upper() for field in SECRET_ENDPOINT_FIELDS}
    | {"K2_S3_ACCESS_KEY_ID", "K2_SCHEMA_REGISTRY_URL", f"{KAFKA_ENV_PREFIX}SASL_PASSWORD"}
)

# The component a container belongs to, by the first word of its service name: the
# component's name and Pulumi type token.
COMPONENTS = {
    "postgres": ("postgres", "k2:postgres:Postgres"),
    "seaweedfs": ("objectstore", "k2:objectstore:SeaweedFS"),
    "kafka": ("kafka", "k2:kafka:Kafka"),  # brokers and the ACL job
    "registry": ("registry", "k2:registry:Registry"),
    "iceberg": ("catalog", "k2:catalog:IcebergRestCatalog"),
    "prometheus": ("monitoring", "k2:monitoring:Monitoring"),
    "grafana": ("monitoring", "k2:monitoring:Monitoring"),
    "bootstrap": ("workers", "k2:workers:Workers"),
    "ingest": ("workers", "k2:workers:Workers"),
}


def k2_version() -> str:
    try:
        return metadata.version("k2")
    except metadata.PackageNotFoundError:  # a source tree without install
        return "0.0.0-dev"


def resources_for(config: StackConfig) -> DockerResources:
    """The provider that creates the containers (the plugin unless told otherwise)."""
    if config.docker_provider is DockerProvider.ENGINE_API:
        from k2stack.pulumi.engine_api import EngineApiResources

        engine_api: DockerResources = EngineApiResources()
        return engine_api
    from k2stack.pulumi.plugin_resources import PluginResources

    return PluginResources()


class Component(pulumi.ComponentResource):
    """A group of the stack's containers (one per service role), their parent in the tree."""

    def __init__(self, type_token: str, name: str) -> None:
        super().__init__(type_token, name, None, None)


def declare_stack(spec: StackSpec, resources: DockerResources) -> dict[str, pulumi.Resource]:
    """Declare every object of `spec`; returns the container resources by container name."""
    components: dict[str, Component] = {}

    def component(container: ContainerSpec) -> Component:
        name, type_token = COMPONENTS[container.service.split("-")[0]]
        if name not in components:
            components[name] = Component(type_token, name)
        return components[name]

    root = Component("k2:network:Network", "network")
    network = resources.network(spec.network, spec.labels, root)
    created: dict[str, pulumi.Resource] = {}
    for container in spec.containers:
        parent = component(container)
        volumes = [resources.volume(v, spec.labels, parent) for v in container.volumes]
        after: Sequence[pulumi.Resource] = [
            network,
            *volumes,
            *(created[name] for name in container.depends_on),
        ]
        created[container.name] = resources.container(container, parent, after)
    for parent in components.values():
        parent.register_outputs({})
    root.register_outputs({"network": spec.network})
    return created


def declare() -> None:
    """The program: read and validate the stack config, declare the stack, export K2_*."""
    config = stack_config.load()
    spec = stack_spec(config, worker_version=k2_version())
    declare_stack(spec, resources_for(config))
    # The host's view when the stack publishes ports; else the in-network one (tests then
    # run in a container on the stack network).
    env = host_endpoints(config) if config.publish_ports else network_endpoints(config)
    # Operators and tests on the host act as any catalog principal: all four credentials.
    names = operator_env_names() + (kafka_security_env_names() if scram(config) else ())
    for name in names:
        value = env[name]
        pulumi.export(name, pulumi.Output.secret(value) if name in SECRET_OUTPUTS else value)
    pulumi.export("network", spec.network)
    pulumi.export("containers", [c.name for c in spec.containers])
    pulumi.export("workerReplicas", config.worker_replicas)
