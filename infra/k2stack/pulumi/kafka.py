"""Apache Kafka in KRaft mode: one combined broker/controller node per configured broker.

Each broker has two listeners: INTERNAL (alias:9092) for containers on the stack network and
EXTERNAL (the topology's broker port, advertised on the publish address) for the host. A
broker's external container port equals its host port, so what it advertises is reachable.
With `k2:kafkaSecurity: scram` both become SASL_PLAINTEXT (see `kafka_security`).
"""

from __future__ import annotations

from dataclasses import replace

import pulumi
import pulumi_docker as docker

from k2stack.pulumi import kafka_security as sasl
from k2stack.pulumi.config import KafkaSecurity
from k2stack.pulumi.service import ContainerSpec, Deployment, container, pull, volume
from k2stack.topology import KAFKA_DOCKER_INTERNAL_PORT, SERVICES, ServiceName

SPEC = SERVICES[ServiceName.KAFKA]
ALIAS = SPEC.name.value  # shared by every broker: a round-robin bootstrap name
# Broker i's external port: the topology's broker port plus i * this step.
EXTERNAL_PORT_STEP = 100


def broker_alias(index: int) -> str:
    return f"{ALIAS}-{index}"


def external_port(index: int) -> int:
    return SPEC.ports["broker"] + EXTERNAL_PORT_STEP * index


def scram_enabled(deployment: Deployment) -> bool:
    return deployment.config.kafka_security is KafkaSecurity.SCRAM


def broker_env(deployment: Deployment, index: int) -> list[str]:
    """The apache/kafka image's KAFKA_* settings for broker `index` (without secrets)."""
    config = deployment.config
    client = sasl.PROTOCOL if scram_enabled(deployment) else "PLAINTEXT"
    controller = SPEC.ports["controller"]
    voters = ",".join(f"{i}@{broker_alias(i)}:{controller}" for i in range(config.kafka_brokers))
    advertised_host = config.publish_address if config.publish_ports else broker_alias(index)
    replication = str(config.replication_factor)
    min_isr = str(config.min_insync_replicas)
    return [
        f"CLUSTER_ID={config.kafka_cluster_id}",
        f"KAFKA_NODE_ID={index}",
        "KAFKA_PROCESS_ROLES=broker,controller",
        f"KAFKA_CONTROLLER_QUORUM_VOTERS={voters}",
        "KAFKA_CONTROLLER_LISTENER_NAMES=CONTROLLER",
        "KAFKA_INTER_BROKER_LISTENER_NAME=INTERNAL",
        "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP="
        f"INTERNAL:{client},EXTERNAL:{client},CONTROLLER:PLAINTEXT",
        f"KAFKA_LISTENERS=INTERNAL://:{KAFKA_DOCKER_INTERNAL_PORT},"
        f"EXTERNAL://:{external_port(index)},CONTROLLER://:{controller}",
        f"KAFKA_ADVERTISED_LISTENERS=INTERNAL://{broker_alias(index)}:{KAFKA_DOCKER_INTERNAL_PORT},"
        f"EXTERNAL://{advertised_host}:{external_port(index)}",
        f"KAFKA_LOG_DIRS={sasl.DATA_DIR}",
        f"KAFKA_DEFAULT_REPLICATION_FACTOR={replication}",
        f"KAFKA_MIN_INSYNC_REPLICAS={min_isr}",
        f"KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR={replication}",
        f"KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR={replication}",
        f"KAFKA_TRANSACTION_STATE_LOG_MIN_ISR={min_isr}",
        f"KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR={replication}",
        f"KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR={min_isr}",
        "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS=0",
        "KAFKA_AUTO_CREATE_TOPICS_ENABLE=false",
        f"KAFKA_HEAP_OPTS=-Xmx{SPEC.memory_mb * 3 // 4}m -Xms{SPEC.memory_mb // 4}m",
    ]


class KafkaComponent(pulumi.ComponentResource):
    def __init__(
        self, name: str, deployment: Deployment, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("k2:kafka:Kafka", name, None, opts)
        self.image = pull(deployment, SPEC, self)
        self.brokers: list[docker.Container] = []
        for index in range(deployment.config.kafka_brokers):
            data = volume(deployment, f"kafka-{index}-data", self)
            port = external_port(index)
            plain_env = broker_env(deployment, index)
            if scram_enabled(deployment):
                plain_env += sasl.broker_settings()
            spec = ContainerSpec(
                service=broker_alias(index),
                alias=broker_alias(index),
                aliases=(ALIAS,),
                envs=plain_env,
                publish={port: port},
                volumes={sasl.DATA_DIR: data},
            )
            healthcheck = None
            if scram_enabled(deployment):
                spec = replace(
                    spec,
                    envs=scram_env(deployment, plain_env),
                    command=sasl.broker_command(),
                    uploads={sasl.FORMAT_PROPERTIES: sasl.format_properties(plain_env)},
                )
                healthcheck = sasl.broker_healthcheck()
            self.brokers.append(
                container(
                    deployment,
                    spec=SPEC,
                    image=self.image.image_id,
                    container_spec=spec,
                    parent=self,
                    healthcheck=healthcheck,
                )
            )
        self.register_outputs({"brokers": [b.name for b in self.brokers]})


def scram_env(deployment: Deployment, plain_env: list[str]) -> pulumi.Output[list[str]]:
    """`plain_env` plus the SASL settings and the principals' passwords (a secret output)."""
    passwords = deployment.secrets.kafka_passwords
    keys = sorted(passwords)

    def env(values: list[str]) -> list[str]:
        return [*plain_env, *sasl.broker_secret_env(dict(zip(keys, values, strict=True)))]

    return pulumi.Output.all(*(passwords[k] for k in keys)).apply(env)
