"""The engine and the base image against real dockerd: the one already running on K2's socket
(adopted, never stopped) and, for start/stop, a second one in a network namespace of its own,
so its iptables rules, bridges and sysctls can be compared with what was there before."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from k2.errors import StackError
from k2stack.docker.base_image import K2_BASE_IMAGE, MIRROR_LABEL, RECIPE_LABEL, ensure_base_image
from k2stack.docker.engine import (
    DEFAULT_SOCKET_URL,
    DockerEngine,
    Engine,
    EngineLayout,
    EngineSource,
    SystemHost,
    ping,
    snapshot,
)

pytestmark = pytest.mark.docker

K2_SOCKET_URL = EngineLayout().socket_url


@pytest.fixture(scope="module")
def engine() -> Engine:
    return DockerEngine().ensure()


def test_ensure_adopts_the_engine_on_k2s_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    if ping(Engine(DEFAULT_SOCKET_URL, EngineSource.DEFAULT)) is None:
        pytest.skip("a Docker engine answers on the default socket: it comes before K2's")
    engines = DockerEngine()
    running_before = engines.find()
    pid_before = engines.status().pid if running_before is not None else None
    first = engines.ensure()
    again = engines.ensure()
    assert first.url == again.url == K2_SOCKET_URL
    assert first.source is EngineSource.K2
    pid = engines.status().pid
    assert pid is not None
    assert pid == int(engines.layout.dockerd_pid_file.read_text())
    if running_before is not None:
        assert pid == pid_before  # adopted: no second dockerd


def test_status_reports_the_engine(engine: Engine) -> None:
    state = DockerEngine().status()
    assert state.engine.url == engine.url
    assert state.version
    client = engine.client()
    try:
        assert state.running_containers == len(client.containers.list())
    finally:
        client.close()


def test_base_image_is_built_once_and_runs_bookworm(engine: Engine) -> None:
    client = engine.client()
    try:
        assert ensure_base_image(client, env={}) == K2_BASE_IMAGE
        image = client.images.get(K2_BASE_IMAGE)
        assert image.labels[RECIPE_LABEL] == "debootstrap-minbase-bookworm"
        assert image.labels[MIRROR_LABEL].startswith("http")
        output = client.containers.run(K2_BASE_IMAGE, ["cat", "/etc/debian_version"], remove=True)
        assert output.decode().startswith("12")
        started = time.monotonic()
        assert ensure_base_image(client, env={}) == K2_BASE_IMAGE
        assert time.monotonic() - started < 5  # reused, not rebuilt
        assert client.images.get(K2_BASE_IMAGE).id == image.id
    finally:
        client.close()


def test_base_image_from_the_environment(engine: Engine) -> None:
    client = engine.client()
    try:
        ensure_base_image(client, env={})
        env = {"K2_DOCKER_BASE_IMAGE": K2_BASE_IMAGE}
        assert ensure_base_image(client, env=env) == K2_BASE_IMAGE
        # Nothing listens on port 9: the pull fails at once.
        env = {"K2_DOCKER_BASE_IMAGE": f"127.0.0.1:9/k2-test/absent-{uuid.uuid4().hex[:8]}:never"}
        with pytest.raises(
            StackError, match=r"could not pull K2_DOCKER_BASE_IMAGE=127\.0\.0\.1:9/"
        ):
            ensure_base_image(client, env=env)
    finally:
        client.close()


@pytest.fixture
def netns() -> Iterator[str]:
    if os.geteuid() != 0 or shutil.which("nsenter") is None:
        pytest.skip("a second engine in its own network namespace needs root and nsenter")
    name = f"k2-engine-test-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], check=False)


def _mounts_under(directory: Path) -> list[str]:
    points = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
    return [p for p in points if p.startswith(f"{directory}/")]


def test_start_and_stop_restore_the_host(netns: str) -> None:
    host = SystemHost(prefix=("nsenter", f"--net=/run/netns/{netns}"))
    # As on a host that never forwarded: dockerd then also sets the FORWARD policy to DROP.
    host.run(["sysctl", "-w", "net.ipv4.ip_forward=0"])
    before = snapshot(host)
    # Short: unix socket paths (containerd's under the exec root) have 108 bytes at most.
    root = Path(tempfile.mkdtemp(prefix="k2e-"))
    layout = EngineLayout(run_dir=root / "run", data_root=root / "data", log_dir=root)
    engines = DockerEngine(layout, host, env={})
    try:
        engine = engines.start()
        assert engine.started_by_k2
        assert engines.status().pid == int(layout.dockerd_pid_file.read_text())
        client = engine.client()
        try:
            client.networks.create(f"k2-engine-test-{uuid.uuid4().hex[:8]}")
        finally:
            client.close()
        changed = snapshot(host)
        assert changed.ip_forward == "1"
        assert "-P FORWARD DROP" in changed.iptables["filter"]
        assert "docker0" in changed.bridges
        assert any(name.startswith("br-") for name in changed.bridges)
        report = engines.stop()
    finally:
        engines.stop()  # a no-op once stopped; stops it when the test failed half-way
    assert report.stopped
    assert report.failed == ()
    assert "net.ipv4.ip_forward=0 (was 1)" in report.restored
    assert snapshot(host) == before
    assert not Path(layout.socket_url.removeprefix("unix://")).exists()
    assert _mounts_under(root) == []
    shutil.rmtree(root)
