"""Run K2's Pulumi program under Pulumi's unit-test mocks and record what it declares.

The mock monitor is subclassed (`set_mocks(monitor=...)`) rather than only the `Mocks`:
`MockResourceArgs` carries no dependencies, but the registration request does, so each
recorded resource keeps its parent, its `depends_on` URNs and its registration position.
"""

from __future__ import annotations

import asyncio
import runpy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import pulumi
import yaml
from pulumi.runtime.mocks import MockMonitor

from k2stack.pulumi.config import StackConfig, validate

ROOT = Path(__file__).resolve().parents[2]
MAIN = ROOT / "infra" / "__main__.py"
STACKS = ("dev", "ci", "cluster")
CONTAINER = "docker:index/container:Container"
NETWORK = "docker:index/network:Network"
VOLUME = "docker:index/volume:Volume"
SECRET_SIG = "4dabf18193072939515e22adb298388d"
# What a CI runner sets on the ci stack: a name prefix and a free block of host ports.
CI_NAME_PREFIX = "ci-run-42"
CI_PORT_OFFSET = 2000
SECRETS = {
    "k2:postgresPassword": "pg-secret-0123456789",
    "k2:s3AccessKeyId": "k2-access",
    "k2:s3SecretAccessKey": "s3-secret-0123456789",
    "k2:grafanaAdminPassword": "grafana-secret-0123",
    "k2:registryPassword": "registry-secret-0123456789",
    "k2:catalogTokenKey": "catalog-token-key-0123456789",
    "k2:catalogAdminSecret": "catalog-admin-secret-0123",
    "k2:catalogIngestSecret": "catalog-ingest-secret-0123",
    "k2:catalogMaintainSecret": "catalog-maintain-secret-0123",
    "k2:catalogQuerySecret": "catalog-query-secret-0123",
}
# Set on stacks with k2:kafkaSecurity=scram (the cluster stack).
KAFKA_SECRETS = {
    "k2:kafkaAdminPassword": "kafka-admin-secret-0123",
    "k2:kafkaIngestPassword": "kafka-ingest-secret-0123",
    "k2:kafkaProducerPassword": "kafka-producer-secret-0123",
}
ALL_SECRETS = {**SECRETS, **KAFKA_SECRETS}


@dataclass
class Resource:
    typ: str
    name: str
    inputs: dict[str, Any]
    urn: str
    parent: str
    # URNs of the resources this one was declared to depend on.
    dependencies: tuple[str, ...]


@dataclass
class StackRun:
    # In registration order: the SDK registers a resource only once its dependencies are.
    resources: list[Resource] = field(default_factory=list)
    exports: dict[str, Any] = field(default_factory=dict)
    secret_exports: set[str] = field(default_factory=set)

    def of_type(self, typ: str) -> list[Resource]:
        return [r for r in self.resources if r.typ == typ]

    def containers(self) -> dict[str, Resource]:
        return {r.name: r for r in self.of_type(CONTAINER)}

    def by_urn(self) -> dict[str, Resource]:
        return {r.urn: r for r in self.resources}


class _Mocks(pulumi.runtime.Mocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        return f"{args.name}-id", dict(args.inputs)

    def call(
        self, args: pulumi.runtime.MockCallArgs
    ) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None  # the program calls no provider function


class RecordingMonitor(MockMonitor):
    """The SDK's mock monitor, recording every registration with its parent and dependencies."""

    def __init__(self, run: StackRun) -> None:
        super().__init__(_Mocks())
        self.run = run

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type != "pulumi:pulumi:Stack":
            self.run.resources.append(
                Resource(
                    typ=request.type,
                    name=request.name,
                    inputs=dict(self.resources[response.urn].state),
                    urn=response.urn,
                    parent=request.parent,
                    dependencies=tuple(request.dependencies),
                )
            )
        return response


def stack_config(stack: str) -> dict[str, str]:
    """A stack's committed config, as the engine passes it (strings), plus test secrets."""
    committed = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    config = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in committed.items()}
    if stack == "ci":
        config["k2:namePrefix"] = CI_NAME_PREFIX
        config["k2:portOffset"] = str(CI_PORT_OFFSET)
    kafka = KAFKA_SECRETS if config.get("k2:kafkaSecurity") == "scram" else {}
    return {**config, **SECRETS, **kafka}


def validated_config(stack: str, config: dict[str, str] | None = None) -> StackConfig:
    """The StackConfig the program validates for the same config (every secret a secret)."""
    raw = config if config is not None else stack_config(stack)
    return validate(raw, frozenset(ALL_SECRETS), stack)


def run_stack(
    stack: str,
    config: dict[str, str] | None = None,
    secret_keys: list[str] | None = None,
) -> StackRun:
    """Run infra/__main__.py for `stack` under mocks; return resources and resolved outputs."""
    run = StackRun()
    pulumi.runtime.set_mocks(
        _Mocks(), project="k2", stack=stack, preview=False, monitor=RecordingMonitor(run)
    )
    pulumi.runtime.set_all_config(
        config if config is not None else stack_config(stack),
        list(ALL_SECRETS) if secret_keys is None else secret_keys,
    )
    exports: dict[str, Any] = {}

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def program() -> Any:
        with mock.patch.object(pulumi, "export", exports.__setitem__):
            runpy.run_path(str(MAIN), run_name="__main__")

        async def resolve() -> None:
            for name, value in exports.items():
                output = pulumi.Output.from_input(value)
                run.exports[name] = await output.future()
                if await output.is_secret():
                    run.secret_exports.add(name)

        return asyncio.ensure_future(resolve())

    program()
    return run


def plain(value: Any) -> Any:
    """An input with Pulumi's secret wrappers removed."""
    if isinstance(value, dict):
        if SECRET_SIG in value:
            return plain(value.get("value"))
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and SECRET_SIG in value


def env_of(resource: Resource) -> dict[str, str]:
    return dict(line.split("=", 1) for line in plain(resource.inputs.get("envs") or []))
