"""The one way K2 declares a container, so every service gets the same policies.

Health check from the topology's probe and `wait=True` (dependants start only once it
passes), a restart policy, a memory limit, never privileged, attached to the stack network
under its alias, ports published only when and where the stack config says.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_docker as docker

from k2stack.pulumi.config import Secrets, StackConfig
from k2stack.topology import DockerOnlySpec, ServiceSpec, docker_healthcheck

HEALTH_INTERVAL = "5s"
HEALTH_TIMEOUT = "5s"
HEALTH_START_PERIOD = "10s"


@dataclass(frozen=True)
class Deployment:
    """What every component needs: the validated config, its secrets and the network."""

    config: StackConfig
    secrets: Secrets
    network_name: pulumi.Input[str]

    def name(self, service: str) -> str:
        return f"{self.config.name_prefix}-{service}"

    @property
    def labels(self) -> list[docker.ContainerLabelArgs]:
        return [docker.ContainerLabelArgs(label="k2.stack", value=self.config.name_prefix)]


@dataclass(frozen=True)
class ContainerSpec:
    """One container of a service: the Docker-specific parts the topology does not hold."""

    service: str
    alias: str
    aliases: Sequence[str] = ()
    command: Sequence[str] | None = None
    envs: pulumi.Input[Sequence[pulumi.Input[str]]] = ()
    # Container port -> host port, published only if the stack publishes ports.
    publish: Mapping[int, int] = field(default_factory=dict)
    volumes: Mapping[str, docker.Volume] = field(default_factory=dict)
    uploads: Mapping[str, str] = field(default_factory=dict)


def pull(
    deployment: Deployment, spec: ServiceSpec | DockerOnlySpec, parent: pulumi.Resource
) -> docker.RemoteImage:
    """The service's pinned image, kept locally so `destroy` does not delete shared layers."""
    return docker.RemoteImage(
        deployment.name(f"{spec.name}-image"),
        name=spec.image,
        keep_locally=True,
        opts=pulumi.ResourceOptions(parent=parent),
    )


def volume(deployment: Deployment, name: str, parent: pulumi.Resource) -> docker.Volume:
    return docker.Volume(
        deployment.name(name),
        name=deployment.name(name),
        labels=[docker.VolumeLabelArgs(label="k2.stack", value=deployment.config.name_prefix)],
        opts=pulumi.ResourceOptions(parent=parent),
    )


def container(
    deployment: Deployment,
    *,
    spec: ServiceSpec | DockerOnlySpec,
    image: pulumi.Input[str],
    container_spec: ContainerSpec,
    parent: pulumi.Resource,
    depends_on: Sequence[pulumi.Resource] = (),
    healthcheck: Sequence[str] | None = None,
) -> docker.Container:
    """A long-running service container under K2's policies."""
    c = container_spec
    config = deployment.config
    ports = (
        [
            docker.ContainerPortArgs(internal=inner, external=outer, ip=config.publish_address)
            for inner, outer in sorted(c.publish.items())
        ]
        if config.publish_ports
        else []
    )
    return docker.Container(
        deployment.name(c.service),
        name=deployment.name(c.service),
        image=image,
        command=list(c.command) if c.command is not None else None,
        envs=c.envs,
        hostname=c.alias,
        networks_advanced=[
            docker.ContainerNetworksAdvancedArgs(
                name=deployment.network_name, aliases=[c.alias, *c.aliases]
            )
        ],
        ports=ports,
        healthcheck=docker.ContainerHealthcheckArgs(
            tests=list(healthcheck or docker_healthcheck(spec)),
            interval=HEALTH_INTERVAL,
            timeout=HEALTH_TIMEOUT,
            start_period=HEALTH_START_PERIOD,
            retries=int(spec.health.timeout_s / 5),
        ),
        wait=True,
        wait_timeout=int(spec.health.timeout_s),
        restart="unless-stopped",
        memory=spec.memory_mb,
        memory_swap=spec.memory_mb,
        privileged=False,
        volumes=[
            docker.ContainerVolumeArgs(volume_name=v.name, container_path=path)
            for path, v in c.volumes.items()
        ],
        uploads=[
            docker.ContainerUploadArgs(file=path, content=content)
            for path, content in c.uploads.items()
        ],
        labels=deployment.labels,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=list(depends_on)),
    )
