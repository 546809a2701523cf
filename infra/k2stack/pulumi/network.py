"""The stack's one bridge network: services find each other by alias."""

from __future__ import annotations

import pulumi
import pulumi_docker as docker


class NetworkComponent(pulumi.ComponentResource):
    def __init__(self, name: str, prefix: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("k2:network:Network", name, None, opts)
        self.network = docker.Network(
            f"{prefix}-net",
            name=f"{prefix}-net",
            driver="bridge",
            labels=[docker.NetworkLabelArgs(label="k2.stack", value=prefix)],
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.name: pulumi.Output[str] = self.network.name
        self.register_outputs({"name": self.name})
