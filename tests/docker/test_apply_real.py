"""`k2stack.docker.apply` against the real Docker engine (no fakes): one small stack, applied once."""

from __future__ import annotations

import time
from collections.abc import Iterator

import docker
import pytest

from k2.errors import StackError
from k2.net import free_port
from k2stack.docker import apply
from k2stack.docker.spec import STACK_LABEL, PortBinding, StackSpec
from tests.docker.support import BASE_IMAGE, SERVICE_SCRIPT, container, new_prefix

# The module's containers are one module-scoped stack, destroyed by its last test: one worker.
pytestmark = [pytest.mark.docker, pytest.mark.timeout(300), pytest.mark.xdist_group("docker-apply")]

UPLOAD = "/opt/k2/conf/greeting.txt"


@pytest.fixture(scope="module")
def client() -> Iterator[docker.DockerClient]:
    engine = apply.docker_client()
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def stack(client: docker.DockerClient) -> Iterator[StackSpec]:
    """A service (upload, env, volume, port, alias) and a job that reads it over the network."""
    prefix = new_prefix()
    service = container(
        prefix,
        "svc",
        f"cp {UPLOAD} /data/greeting; {SERVICE_SCRIPT}",
        env={"K2_GREETING": "hello-env"},
        secret_env=frozenset({"K2_GREETING"}),
        uploads={UPLOAD: "hello-upload\n", "/tmp/k2-note.txt": "note\n"},
        volumes={f"{prefix}-data": "/data"},
        ports=(PortBinding(container_port=8080, host_port=free_port(), host_ip="127.0.0.1"),),
        aliases=("svc", "svc-alias"),
    )
    reader = container(
        prefix,
        "reader",
        "getent hosts svc-alias && grep -q hello-upload /data/greeting",
        job=True,
        volumes={f"{prefix}-data": "/data"},
        depends_on=(service.name,),
    )
    spec = StackSpec(
        prefix=prefix,
        network=f"{prefix}-net",
        volumes=(f"{prefix}-data",),
        containers=(service, reader),
    )
    try:
        started = time.monotonic()
        apply.apply_stack(client, spec)
        print(f"apply_stack: {time.monotonic() - started:.1f} s")
        yield spec
    finally:
        apply.destroy_stack(client, prefix)


def _exec(client: docker.DockerClient, name: str, script: str) -> str:
    code, output = client.containers.get(name).exec_run(["sh", "-c", script])
    assert code == 0, output
    return bytes(output).decode().strip()


def test_service_is_healthy_and_job_exited_zero(
    client: docker.DockerClient, stack: StackSpec
) -> None:
    svc = client.containers.get(stack.container("svc").name)
    assert svc.attrs["State"]["Health"]["Status"] == "healthy"
    reader = client.containers.get(stack.container("reader").name)
    assert reader.attrs["State"]["Status"] == "exited"
    assert reader.attrs["State"]["ExitCode"] == 0


def test_upload_env_and_volume_reach_the_container(
    client: docker.DockerClient, stack: StackSpec
) -> None:
    name = stack.container("svc").name
    assert _exec(client, name, f"cat {UPLOAD}") == "hello-upload"
    assert _exec(client, name, "echo $K2_GREETING") == "hello-env"
    assert _exec(client, name, "cat /data/greeting") == "hello-upload"
    # Uploads carry no directory entries: existing directories keep their mode.
    assert _exec(client, name, "stat -c %a /tmp") == "1777"
    assert _exec(client, name, "stat -c %a /opt/k2/conf") == "755"


def test_create_settings_follow_the_spec(client: docker.DockerClient, stack: StackSpec) -> None:
    spec = stack.container("svc")
    attrs = client.containers.get(spec.name).attrs
    host = attrs["HostConfig"]
    assert host["PortBindings"] == {
        "8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(spec.ports[0].host_port)}]
    }
    assert host["Memory"] == host["MemorySwap"] == 64 * 1024 * 1024
    assert host["Privileged"] is False
    assert not host.get("Init")
    assert host["RestartPolicy"]["Name"] == "unless-stopped"
    assert attrs["Config"]["Labels"][STACK_LABEL] == stack.prefix
    assert attrs["Config"]["Healthcheck"]["Interval"] == 1_000_000_000
    aliases = attrs["NetworkSettings"]["Networks"][stack.network]["Aliases"]
    assert {"svc", "svc-alias"} <= set(aliases)
    job = client.containers.get(stack.container("reader").name).attrs["HostConfig"]
    assert job["RestartPolicy"]["Name"] == "no"


def test_failed_job_raises_with_its_logs(client: docker.DockerClient, stack: StackSpec) -> None:
    failing = container(stack.prefix, "fails", "echo job-went-wrong >&2; exit 3", job=True)
    with pytest.raises(StackError, match=r"(?s)exited with code 3.*job-went-wrong"):
        apply.run_container(client, failing)


def test_crashing_service_fails_fast(client: docker.DockerClient, stack: StackSpec) -> None:
    crashing = container(stack.prefix, "crashes", "echo service-died; exit 5")
    started = time.monotonic()
    with pytest.raises(StackError, match=r"(?s)crashes stopped.*service-died"):
        apply.run_container(client, crashing)
    assert time.monotonic() - started < 20


def test_rerun_replaces_its_own_container_but_never_a_foreign_one(
    client: docker.DockerClient, stack: StackSpec
) -> None:
    again = container(stack.prefix, "again", "true", job=True)
    first = apply.run_container(client, again)
    assert apply.run_container(client, again) != first
    foreign = f"{stack.prefix}-foreign"
    client.containers.create(BASE_IMAGE, ["true"], name=foreign)
    try:
        with pytest.raises(StackError, match="not part of stack"):
            apply.run_container(client, container(stack.prefix, "foreign", "true", job=True))
    finally:
        client.containers.get(foreign).remove(force=True)


def test_destroy_leaves_nothing(client: docker.DockerClient) -> None:
    prefix = new_prefix()
    spec = StackSpec(
        prefix=prefix,
        network=f"{prefix}-net",
        volumes=(f"{prefix}-v",),
        containers=(container(prefix, "svc", SERVICE_SCRIPT, volumes={f"{prefix}-v": "/v"}),),
    )
    apply.apply_stack(client, spec)
    assert len(apply.leftovers(client, prefix)) == 3
    started = time.monotonic()
    apply.destroy_stack(client, prefix)
    assert apply.leftovers(client, prefix) == []
    # The service stops on SIGTERM: no waiting out the stop timeout.
    assert time.monotonic() - started < 15
    # Removing what is already gone is fine.
    apply.remove_container(client, f"{prefix}-svc")
    apply.remove_volume(client, f"{prefix}-v")
    apply.remove_network(client, f"{prefix}-net")
