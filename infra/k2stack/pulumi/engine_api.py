"""`DockerResources` as Pulumi dynamic resources that apply specs through the Docker Engine API.

For machines where the `pulumi-resource-docker` plugin cannot be had: the real Pulumi engine
still plans, orders, records state and destroys; each resource's create/delete calls
`k2stack.docker.apply`, the same code the Docker backend of `k2-stack` runs.

Pulumi serialises each provider with dill and runs it in a separate process
(`pulumi-resource-pulumi-python`, i.e. `python -m pulumi.dynamic` from the venv). So the
providers are module-level classes with no state: pickled by reference, they import this
module there, and each method opens its own Engine API client.

Inputs are plain data: the spec as `model_dump(mode="json")` without its environment, and the
environment separately as `NAME=value` lines, a secret Output when the spec holds a secret
(`resources.secret_env`). It is also an additional secret output, so neither the inputs nor the
outputs in the state file ever hold it in plain text.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

import docker
import pulumi
from pulumi.dynamic import CreateResult, DiffResult, Resource, ResourceProvider

from k2.errors import StackError
from k2stack.docker import apply
from k2stack.docker.spec import ContainerSpec
from k2stack.pulumi.resources import secret_env

# Input keys compared by `diff`; every other key is an output or Pulumi's own (`__provider`).
_NAMED_INPUTS = ("name", "labels")
_CONTAINER_INPUTS = ("spec", "env")


def _log(line: str) -> None:
    # The provider process's stderr reaches the engine's output (listed under the stack
    # resource, not the container): progress shows during `up`.
    print(f"[k2 engine-api] {line}", file=sys.stderr, flush=True)


@contextmanager
def _client() -> Iterator[docker.DockerClient]:
    client = apply.docker_client()
    try:
        yield client
    finally:
        client.close()


def _replace_on_change(
    olds: Mapping[str, Any], news: Mapping[str, Any], keys: Sequence[str]
) -> DiffResult:
    # Docker objects here are immutable in place and their names are fixed: any change is a
    # replacement, the old object deleted first so the new one can take its name.
    changed = [key for key in keys if olds.get(key) != news.get(key)]
    return DiffResult(changes=bool(changed), replaces=changed, delete_before_replace=True)


def spec_input(spec: ContainerSpec) -> dict[str, Any]:
    """The spec as the resource's `spec` input: JSON data without the environment."""
    data = spec.model_dump(mode="json", exclude={"env"})
    # A frozenset dumps in hash order, which differs between processes: unsorted, every
    # `up` would see a change and replace the container.
    data["secret_env"] = sorted(spec.secret_env)
    return data


def _fixed_name(
    opts: pulumi.ResourceOptions, secret_outputs: Sequence[str] = ()
) -> pulumi.ResourceOptions:
    # Docker names are fixed, so a replacement must delete the old object first.
    own = pulumi.ResourceOptions(
        delete_before_replace=True, additional_secret_outputs=list(secret_outputs)
    )
    return pulumi.ResourceOptions.merge(opts, own)


def container_spec(props: Mapping[str, Any]) -> ContainerSpec:
    """Rebuild the spec from the resource's inputs (the env comes as `NAME=value` lines)."""
    env = dict(line.split("=", 1) for line in props.get("env") or ())
    return ContainerSpec.model_validate({**props["spec"], "env": env})


# How each named object is made and removed (`apply` is idempotent for both).
_NAMED_OBJECTS: dict[str, tuple[Callable[..., str], Callable[..., None]]] = {
    "network": (apply.ensure_network, apply.remove_network),
    "volume": (apply.ensure_volume, apply.remove_volume),
}


class NamedObjectProvider(ResourceProvider):
    """A network or volume (`kind`): made unless this stack has it, removed on delete."""

    kind: ClassVar[str]

    def create(self, props: dict[str, Any]) -> CreateResult:
        ensure, _ = _NAMED_OBJECTS[self.kind]
        with _client() as client:
            object_id = ensure(client, props["name"], props["labels"])
        return CreateResult(object_id, {key: props[key] for key in _NAMED_INPUTS})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return _replace_on_change(olds, news, _NAMED_INPUTS)

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        _, remove = _NAMED_OBJECTS[self.kind]
        with _client() as client:
            remove(client, props["name"])


class NetworkProvider(NamedObjectProvider):
    kind = "network"


class VolumeProvider(NamedObjectProvider):
    kind = "volume"


class ContainerProvider(ResourceProvider):
    """A container, created ready (healthy, or a job exited 0) by `run_container`."""

    def create(self, props: dict[str, Any]) -> CreateResult:
        spec = container_spec(props)
        with _client() as client:
            try:
                container_id = apply.run_container(client, spec, log=_log)
            except StackError:
                # A failed create is not recorded in the state, so `destroy` would never
                # remove this container: remove it now (its logs are in the error).
                apply.remove_container(client, spec.name)
                raise
        return CreateResult(container_id, {key: props[key] for key in _CONTAINER_INPUTS})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return _replace_on_change(olds, news, _CONTAINER_INPUTS)

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        with _client() as client:
            apply.remove_container(client, props["spec"]["name"])


class Network(Resource, module="k2docker", name="Network"):
    """A Docker network applied through the Engine API."""

    def __init__(self, name: str, labels: Mapping[str, str], opts: pulumi.ResourceOptions) -> None:
        props = {"name": name, "labels": dict(labels)}
        super().__init__(NetworkProvider(), name, props, _fixed_name(opts))


class Volume(Resource, module="k2docker", name="Volume"):
    """A Docker volume applied through the Engine API."""

    def __init__(self, name: str, labels: Mapping[str, str], opts: pulumi.ResourceOptions) -> None:
        props = {"name": name, "labels": dict(labels)}
        super().__init__(VolumeProvider(), name, props, _fixed_name(opts))


class Container(Resource, module="k2docker", name="Container"):
    """A Docker container applied through the Engine API; its id is the container id."""

    def __init__(self, spec: ContainerSpec, opts: pulumi.ResourceOptions) -> None:
        props = {"spec": spec_input(spec), "env": secret_env(spec)}
        super().__init__(ContainerProvider(), spec.name, props, _fixed_name(opts, ["env"]))


class EngineApiResources:
    """`DockerResources` through the Engine API (`k2:dockerProvider: engine-api`).

    A container also depends on the network and volumes it names when they were declared
    here: `destroy` then removes containers before what they use, whatever `depends_on` says.
    """

    def __init__(self) -> None:
        self._declared: dict[str, pulumi.Resource] = {}

    def network(
        self, name: str, labels: Mapping[str, str], parent: pulumi.Resource
    ) -> pulumi.Resource:
        resource = Network(name, labels, pulumi.ResourceOptions(parent=parent))
        self._declared[f"network:{name}"] = resource
        return resource

    def volume(
        self, name: str, labels: Mapping[str, str], parent: pulumi.Resource
    ) -> pulumi.Resource:
        resource = Volume(name, labels, pulumi.ResourceOptions(parent=parent))
        self._declared[f"volume:{name}"] = resource
        return resource

    def container(
        self, spec: ContainerSpec, parent: pulumi.Resource, depends_on: Sequence[pulumi.Resource]
    ) -> pulumi.Resource:
        used = [f"network:{spec.network}", *(f"volume:{name}" for name in spec.volumes)]
        implicit = [self._declared[key] for key in used if key in self._declared]
        opts = pulumi.ResourceOptions(parent=parent, depends_on=[*depends_on, *implicit])
        return Container(spec, opts)
