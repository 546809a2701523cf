"""The Docker stack keeps its secrets: never in a container's log, command, labels or image.

Against the ci stack of `task test:docker`: every container of the stack is inspected and its
whole log read; the stack's generated secrets may appear only in the environment of the
containers that need them (Docker's only way in), and every published port is on loopback.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from urllib.parse import urlsplit

import docker
import pytest

from k2.settings import CatalogPrincipal, Endpoints
from k2stack.docker.spec import STACK_LABEL

pytestmark = [pytest.mark.docker_stack]


@pytest.fixture(scope="module")
def containers() -> Iterator[list[docker.models.containers.Container]]:
    prefix = os.environ.get("K2_DOCKER_STACK_PREFIX")
    if not prefix:
        pytest.fail("K2_DOCKER_STACK_PREFIX is not set: run through `task test:docker`")
    client = docker.DockerClient(base_url=os.environ["DOCKER_HOST"], version="auto")
    found = client.containers.list(all=True, filters={"label": f"{STACK_LABEL}={prefix}"})
    assert len(found) >= 8, [c.name for c in found]
    yield found
    client.close()


def secrets_of(stack: Endpoints) -> dict[str, str]:
    found = {
        "postgres password": urlsplit(stack.postgres_dsn.get_secret_value()).password or "",
        "S3 secret key": stack.s3_secret_access_key.get_secret_value(),
        "registry password": urlsplit(stack.schema_registry_url).password or "",
    }
    for principal in CatalogPrincipal:
        found[f"catalog {principal.value} secret"] = stack.catalog_credential(principal).partition(
            ":"
        )[2]
    for name, value in found.items():
        assert len(value) >= 16, f"{name} is missing or too short to scan for"
    return found


def test_no_secret_in_any_container_log(
    stack: Endpoints, containers: list[docker.models.containers.Container]
) -> None:
    secrets = secrets_of(stack)
    leaks = [
        f"{name} in the log of {c.name}"
        for c in containers
        for name, value in secrets.items()
        if value.encode() in c.logs(stdout=True, stderr=True)
    ]
    assert leaks == []


def test_secrets_reach_containers_only_through_their_environment(
    stack: Endpoints, containers: list[docker.models.containers.Container]
) -> None:
    secrets = secrets_of(stack)
    for c in containers:
        config = dict(c.attrs["Config"])
        config.pop("Env")
        visible = json.dumps([config, c.attrs["Args"], c.attrs["Path"], c.image.attrs["Config"]])
        assert not [n for n, v in secrets.items() if v in visible], c.name


def test_every_published_port_is_on_loopback(
    containers: list[docker.models.containers.Container],
) -> None:
    published = [
        (c.name, binding["HostIp"])
        for c in containers
        for bindings in (c.attrs["HostConfig"]["PortBindings"] or {}).values()
        for binding in bindings or ()
    ]
    assert published
    assert {ip for _, ip in published} == {"127.0.0.1"}, published


def test_services_run_as_non_root(containers: list[docker.models.containers.Container]) -> None:
    for c in containers:
        if c.status != "running":
            continue
        code, out = c.exec_run(["id", "-u"])
        assert code == 0, c.name
        assert out.decode().strip() != "0", c.name
