"""`DockerResources` through the pulumi-resource-docker plugin (`pulumi_docker`).

The provider for users' machines, where `pulumi plugin install resource docker` works. Each
field of a `ContainerSpec` maps to one `docker.Container` argument; `wait=True` makes the
engine wait for the health check, `attach=True` for a job's exit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi
import pulumi_docker as docker

from k2stack.docker.spec import ContainerSpec
from k2stack.pulumi.resources import secret_env


def _duration(seconds: float) -> str:
    return f"{seconds:g}s"


class PluginResources:
    """Declares networks, volumes and containers as `pulumi_docker` resources."""

    def network(
        self, name: str, labels: Mapping[str, str], parent: pulumi.Resource
    ) -> pulumi.Resource:
        return docker.Network(
            name,
            name=name,
            driver="bridge",
            labels=[docker.NetworkLabelArgs(label=k, value=v) for k, v in labels.items()],
            opts=pulumi.ResourceOptions(parent=parent),
        )

    def volume(
        self, name: str, labels: Mapping[str, str], parent: pulumi.Resource
    ) -> pulumi.Resource:
        return docker.Volume(
            name,
            name=name,
            labels=[docker.VolumeLabelArgs(label=k, value=v) for k, v in labels.items()],
            opts=pulumi.ResourceOptions(parent=parent),
        )

    def container(
        self, spec: ContainerSpec, parent: pulumi.Resource, depends_on: Sequence[pulumi.Resource]
    ) -> pulumi.Resource:
        health = spec.healthcheck
        return docker.Container(
            spec.name,
            name=spec.name,
            image=spec.image,
            command=list(spec.command) if spec.command is not None else None,
            envs=secret_env(spec),
            hostname=spec.hostname,
            user=spec.user,
            networks_advanced=[
                docker.ContainerNetworksAdvancedArgs(name=spec.network, aliases=list(spec.aliases))
            ],
            ports=[
                docker.ContainerPortArgs(
                    internal=p.container_port, external=p.host_port, ip=p.host_ip
                )
                for p in spec.ports
            ],
            healthcheck=(
                docker.ContainerHealthcheckArgs(
                    tests=list(health.test),
                    interval=_duration(health.interval_s),
                    timeout=_duration(health.timeout_s),
                    start_period=_duration(health.start_period_s),
                    retries=health.retries,
                )
                if health is not None
                else None
            ),
            # A service: created once healthy. A job: run once, `attach` waits for its exit.
            wait=not spec.job and health is not None,
            wait_timeout=spec.wait_timeout_s,
            must_run=not spec.job,
            attach=spec.job,
            restart=spec.restart,
            memory=spec.memory_mb,
            memory_swap=spec.memory_mb,
            privileged=False,
            volumes=[
                docker.ContainerVolumeArgs(volume_name=volume, container_path=path)
                for volume, path in spec.volumes.items()
            ],
            uploads=[
                docker.ContainerUploadArgs(file=path, content=content)
                for path, content in spec.uploads.items()
            ],
            labels=[docker.ContainerLabelArgs(label=k, value=v) for k, v in spec.labels.items()],
            opts=pulumi.ResourceOptions(parent=parent, depends_on=list(depends_on)),
        )
