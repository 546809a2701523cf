"""How the Pulumi program turns container specs into resources: one protocol, two providers.

`PluginResources` declares `pulumi_docker` resources (the `pulumi-resource-docker` plugin, on
users' machines); `k2stack.pulumi.engine_api.EngineApiResources` declares Pulumi dynamic
resources that apply the identical specs through the Docker Engine API (`k2stack.docker.apply`),
for machines where that plugin cannot be had. Either way the engine, the program, its config,
secrets, dependency order, outputs and `destroy` run for real. `k2:dockerProvider` picks one
(`auto`: the plugin when it is installed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import pulumi

from k2stack.docker.spec import ContainerSpec


class DockerResources(Protocol):
    """Declares the Docker objects of a stack as Pulumi resources."""

    def network(
        self, name: str, labels: Mapping[str, str], parent: pulumi.Resource
    ) -> pulumi.Resource:
        """A bridge network; containers find each other on it by alias."""
        ...

    def volume(
        self, name: str, labels: Mapping[str, str], parent: pulumi.Resource
    ) -> pulumi.Resource:
        """A named volume (data that outlives a container)."""
        ...

    def container(
        self, spec: ContainerSpec, parent: pulumi.Resource, depends_on: Sequence[pulumi.Resource]
    ) -> pulumi.Resource:
        """A container created from `spec`; ready (healthy, or a job exited 0) when created."""
        ...


def secret_env(spec: ContainerSpec) -> pulumi.Input[list[str]]:
    """The spec's environment as `NAME=value` lines, a Pulumi secret when it holds one."""
    lines = [f"{key}={value}" for key, value in sorted(spec.env.items())]
    return pulumi.Output.secret(lines) if spec.secret_env else lines
