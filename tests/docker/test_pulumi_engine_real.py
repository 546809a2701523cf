"""The real Pulumi engine (CLI v3.274.0, Automation API, inline program) driving
`EngineApiResources` against the real Docker engine: up, an unchanged re-up, destroy."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pulumi
import pytest
from typer.testing import CliRunner

from k2.errors import StackError
from k2stack.docker import apply
from k2stack.docker.spec import STACK_LABEL
from k2stack.pulumi import automation
from k2stack.pulumi.config import raw_config
from k2stack.pulumi.engine_api import EngineApiResources
from k2stack.pulumi.engine_cli import pulumi_app
from tests.docker.support import SERVICE_SCRIPT, container

pytestmark = [pytest.mark.docker, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]


def _program(prefix: str, mode: str = "test", job_exit: int = 0) -> None:
    """A network, a volume, a service holding a secret, and a job that needs the service."""
    password = raw_config()["k2:postgresPassword"]
    labels = {STACK_LABEL: prefix}
    resources = EngineApiResources()
    parent = pulumi.ComponentResource("k2test:index:Stack", prefix)
    network = resources.network(f"{prefix}-net", labels, parent)
    volume = resources.volume(f"{prefix}-data", labels, parent)
    service = container(
        prefix,
        "svc",
        f"echo ok > /data/ok; {SERVICE_SCRIPT}",
        env={"K2_PASSWORD": password, "K2_MODE": mode},
        secret_env=frozenset({"K2_PASSWORD"}),
        volumes={f"{prefix}-data": "/data"},
    )
    svc = resources.container(service, parent, [])
    job = container(
        prefix,
        "job",
        'getent hosts svc && grep -q ok /data/ok && test "$K2_PASSWORD" = "$EXPECTED"'
        + (f"; echo job-failed-on-purpose; exit {job_exit}" if job_exit else ""),
        job=True,
        env={"K2_PASSWORD": password, "EXPECTED": password},
        secret_env=frozenset({"K2_PASSWORD", "EXPECTED"}),
        volumes={f"{prefix}-data": "/data"},
        depends_on=(service.name,),
    )
    resources.container(job, parent, [svc])
    parent.register_outputs({})
    pulumi.export("network", network.id)
    pulumi.export("volume", volume.id)
    pulumi.export("service", svc.id)
    pulumi.export("password", pulumi.Output.secret(password))


@pytest.fixture
def pulumi_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("K2_PULUMI_DIR", str(tmp_path / "pulumi"))
    return tmp_path / "pulumi"


@pytest.fixture
def client() -> Iterator[docker.DockerClient]:
    engine = apply.docker_client()
    yield engine
    engine.close()


def _up(stack_name: str, secrets: dict[str, str], **program: Any) -> tuple[dict[str, str], float]:
    """`automation.up` of the test program as the runner calls it; returns outputs and seconds."""
    prefix = f"k2t-{stack_name}"
    started = time.monotonic()
    outputs = automation.up(
        stack_name,
        automation.committed_config_file(stack_name, REPO),
        program=lambda: _program(prefix, **program),
        extra_config={"k2:namePrefix": prefix},
        secrets=secrets,
    )
    return outputs, time.monotonic() - started


def test_up_reup_destroy(pulumi_dir: Path, client: docker.DockerClient) -> None:
    stack_name = f"ci-t{uuid.uuid4().hex[:8]}"
    prefix = f"k2t-{stack_name}"
    secrets = automation.generated_secrets(automation.required_secret_keys({}))
    password = secrets["k2:postgresPassword"]
    try:
        outputs, up_s = _up(stack_name, secrets)

        svc = client.containers.get(f"{prefix}-svc")
        assert svc.attrs["State"]["Health"]["Status"] == "healthy"
        assert outputs["service"] == svc.id
        assert outputs["network"] == client.networks.get(f"{prefix}-net").id
        assert outputs["volume"] == f"{prefix}-data"
        assert outputs["password"] == password
        job = client.containers.get(f"{prefix}-job").attrs["State"]
        assert (job["Status"], job["ExitCode"]) == ("exited", 0)
        assert "K2_PASSWORD=" + password in svc.attrs["Config"]["Env"]

        states = list((pulumi_dir / "state").rglob(f"{stack_name}.json"))
        assert len(states) == 1
        state = states[0].read_text()
        assert password not in state
        assert "K2_MODE=test" not in state  # the whole env is secret, outputs included
        assert '"ciphertext"' in state

        again, reup_s = _up(stack_name, automation.generated_secrets(secrets))
        # Nothing changed, so nothing was replaced: the same containers, the first secrets.
        assert again == outputs
        assert client.containers.get(f"{prefix}-svc").id == svc.id
        assert automation.outputs(stack_name) == outputs
        shown = CliRunner().invoke(pulumi_app, ["outputs", "--stack", stack_name])
        assert shown.exit_code == 0, shown.output
        assert f"volume={prefix}-data" in shown.stdout.splitlines()

        changed, replace_s = _up(stack_name, secrets, mode="changed")
        # A changed env replaces the container under the same name (deleted first).
        replaced = client.containers.get(f"{prefix}-svc")
        assert changed["service"] == replaced.id != svc.id
        assert "K2_MODE=changed" in replaced.attrs["Config"]["Env"]
    finally:
        started = time.monotonic()
        assert automation.destroy(stack_name)
        destroy_s = time.monotonic() - started
    assert apply.leftovers(client, prefix) == []
    # Removed from the backend too: destroying it again has nothing to do.
    again_destroyed = CliRunner().invoke(pulumi_app, ["destroy", "--stack", stack_name])
    assert again_destroyed.exit_code == 0, again_destroyed.output
    assert "nothing to do" in again_destroyed.output
    assert not (pulumi_dir / "workspaces" / stack_name).exists()
    print(
        f"pulumi up {up_s:.1f} s, unchanged re-up {reup_s:.1f} s, "
        f"replacing re-up {replace_s:.1f} s, destroy {destroy_s:.1f} s"
    )


def test_a_failed_create_leaves_no_container(pulumi_dir: Path, client: docker.DockerClient) -> None:
    stack_name = f"ci-t{uuid.uuid4().hex[:8]}"
    prefix = f"k2t-{stack_name}"
    secrets = automation.generated_secrets(automation.required_secret_keys({}))
    try:
        with pytest.raises(StackError, match="pulumi up of stack"):
            _up(stack_name, secrets, job_exit=3)
        # Not in the state, so the provider removed it itself; the rest is in the state.
        names = {
            c.name
            for c in client.containers.list(all=True, filters={"label": f"{STACK_LABEL}={prefix}"})
        }
        assert names == {f"{prefix}-svc"}
    finally:
        assert automation.destroy(stack_name)
    assert apply.leftovers(client, prefix) == []
