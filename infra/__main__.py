"""K2's Pulumi program: wires the components and exports the stack's outputs, nothing else."""

from __future__ import annotations

import pulumi

from k2.settings import endpoint_env_names, kafka_security_env_names
from k2stack.pulumi import config as stack_config
from k2stack.pulumi import kafka_security as sasl
from k2stack.pulumi.catalog import CatalogComponent
from k2stack.pulumi.config import KafkaSecurity
from k2stack.pulumi.kafka import KafkaComponent, broker_alias
from k2stack.pulumi.kafka_acls import KafkaAclsComponent
from k2stack.pulumi.monitoring import MonitoringComponent
from k2stack.pulumi.network import NetworkComponent
from k2stack.pulumi.objectstore import ObjectStoreComponent
from k2stack.pulumi.outputs import as_env_list, split, stack_endpoints, with_kafka_client
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
scram = config.kafka_security is KafkaSecurity.SCRAM
kafka_ready: list[pulumi.Resource] = list(broker.brokers)
if scram:
    acls = KafkaAclsComponent(
        "kafka-acls",
        deployment,
        image=broker.image.image_id,
        brokers=broker.brokers,
        broker_aliases=[broker_alias(i) for i in range(config.kafka_brokers)],
    )
    kafka_ready.append(acls.job)
workers = WorkersComponent(
    "workers",
    deployment,
    image=image.image_name,
    env=as_env_list(with_kafka_client(deployment, in_network, sasl.INGEST)),
    bootstrap_env=as_env_list(with_kafka_client(deployment, in_network, sasl.ADMIN)),
    depends_on=[*kafka_ready, schema_registry.container, catalog.container],
)

# The host's view: operators and tests act as the admin principal when SCRAM is on.
for_host = with_kafka_client(
    deployment, stack_endpoints(deployment, object_store.alias, in_network=False), sasl.ADMIN
)
names = endpoint_env_names() + (kafka_security_env_names() if scram else ())
for name, value in split(for_host, names).items():
    pulumi.export(name, value)
pulumi.export("network", network.name)
pulumi.export("workerReplicas", config.worker_replicas)
