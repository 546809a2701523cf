"""K2's Pulumi program: wires the components and exports the stack's outputs, nothing else."""

from __future__ import annotations

import pulumi

from k2.settings import endpoint_env_names
from k2stack.pulumi import config as stack_config
from k2stack.pulumi.catalog import CatalogComponent
from k2stack.pulumi.kafka import KafkaComponent
from k2stack.pulumi.monitoring import MonitoringComponent
from k2stack.pulumi.network import NetworkComponent
from k2stack.pulumi.objectstore import ObjectStoreComponent
from k2stack.pulumi.outputs import as_env_list, split, stack_endpoints
from k2stack.pulumi.postgres import PostgresComponent
from k2stack.pulumi.registry import RegistryComponent
from k2stack.pulumi.service import Deployment
from k2stack.pulumi.workers import WorkerImageComponent, WorkersComponent

config = stack_config.load()
network = NetworkComponent("network", config.name_prefix)
deployment = Deployment(config, stack_config.Secrets(config), network.name)

image = WorkerImageComponent("k2-image")
database = PostgresComponent("postgres", deployment)
object_store = ObjectStoreComponent("objectstore", deployment, image.image_name)
broker = KafkaComponent("kafka", deployment)
schema_registry = RegistryComponent("registry", deployment, database.container)
ready = [r for r in (database.container, object_store.ready) if r is not None]
catalog = CatalogComponent("catalog", deployment, object_store.internal_endpoint, ready)

in_network = stack_endpoints(deployment, object_store.alias, in_network=True)
monitoring = MonitoringComponent(
    "monitoring", deployment, in_network.apply(lambda e: e["K2_PROMETHEUS_URL"])
)
workers = WorkersComponent(
    "workers",
    deployment,
    image=image.image_name,
    env=as_env_list(in_network),
    depends_on=[*broker.brokers, schema_registry.container, catalog.container],
)

for name, value in split(
    stack_endpoints(deployment, object_store.alias, in_network=False), endpoint_env_names()
).items():
    pulumi.export(name, value)
pulumi.export("network", network.name)
pulumi.export("workerReplicas", config.worker_replicas)
