"""K2's images against a real engine: they build, rebuild as no-ops, and each service image
runs K2's own launcher offline as an unprivileged user."""

from __future__ import annotations

import secrets
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest

from k2stack.docker.base_image import ensure_base_image
from k2stack.docker.engine import DockerEngine
from k2stack.docker.image_recipes import WORKER, recipes
from k2stack.docker.images import ImageInfo, build_images, image_sizes
from k2stack.topology import SERVICES, ServiceName

pytestmark = pytest.mark.docker

# Runs inside a service image: everything `k2-stack serve` imports, the paths the code finds
# relative to itself, the launcher's install (offline: nothing may be missing), the binary.
CHECK_SERVICE = textwrap.dedent(
    """
    import os, re, subprocess, sys
    from pathlib import Path

    import k2stack.cli, k2stack.local.health, k2stack.local.stack, k2stack.serve
    from k2.contracts.paths import contracts_dir
    from k2stack.local.context import StackContext, default_cache_dir
    from k2stack.local.ports import default_ports
    from k2stack.local.services import launchers
    from k2stack.observability import rule_files
    from k2stack.topology import Credentials, ServiceName

    service = ServiceName(sys.argv[1])
    assert rule_files() and all(path.is_file() for path in rule_files()), rule_files()
    assert (contracts_dir() / "catalogue.yaml").is_file(), contracts_dir()
    ctx = StackContext(
        state_dir=Path(os.environ["K2_STACK_DIR"]),
        cache_dir=default_cache_dir(),
        ports=default_ports(),
        credentials=Credentials(postgres_password="", s3_access_key_id="", s3_secret_access_key=""),
    )
    launcher = launchers()[service]
    launcher.install(ctx)
    artifacts = launcher.artifacts(ctx)
    assert all((path / ".complete").is_file() or path.is_dir() for path in artifacts)
    binaries = {
        "postgres": ["/usr/lib/postgresql/15/bin/postgres", "--version"],
        "seaweedfs": ["weed", "version"],
        "prometheus": [str(artifacts[0] / "usr/bin/prometheus"), "--version"] if artifacts else [],
    }
    argv = binaries.get(service.value, ["java", "-version"])
    out = subprocess.run(argv, capture_output=True, text=True, check=True)
    print("version:", (out.stdout + out.stderr).strip().splitlines()[0])
    if service is ServiceName.REGISTRY:
        from k2stack.local.services.registry import java_for_registry

        java = subprocess.run([java_for_registry(), "-version"], capture_output=True, text=True)
        major = int(re.search(r'version "(\\d+)', java.stderr).group(1))
        assert major >= 21, java.stderr
        print("registry java:", major)
    print("uid:", os.getuid())
    """
)

CHECK_WORKER = textwrap.dedent(
    """
    import os
    import k2.cli.main, k2.ingest.worker, polars, pyarrow, pyiceberg
    from k2.contracts.paths import contracts_dir

    assert (contracts_dir() / "catalogue.yaml").is_file(), contracts_dir()
    print("uid:", os.getuid())
    """
)


@pytest.fixture(scope="module")
def client() -> Any:
    return DockerEngine().client()


@pytest.fixture(scope="module")
def base(client: Any) -> str:
    return ensure_base_image(client)


@pytest.fixture(scope="module")
def built(client: Any, base: str) -> dict[str, ImageInfo]:
    return build_images(client, base, log=lambda _: None)


def _run(client: Any, image: str, command: list[str]) -> str:
    """Run `command` in `image` as the image's user, without any network; its output."""
    output = client.containers.run(
        image, command, network_mode="none", remove=True, stdout=True, stderr=True
    )
    return bytes(output).decode()


def test_every_image_builds(
    built: dict[str, ImageInfo], capsys: pytest.CaptureFixture[str]
) -> None:
    assert set(built) == set(recipes())
    with capsys.disabled():
        print()
        for info in built.values():
            state = "built" if info.built else "reused"
            print(f"  {info.name:26} {info.size / 1e6:7.1f} MB  {state:6} {info.seconds:6.1f} s")


def test_a_second_build_is_a_no_op(client: Any, base: str, built: dict[str, ImageInfo]) -> None:
    again = build_images(client, base, log=lambda _: None)
    assert [key for key, info in again.items() if info.built] == []
    assert {key: info.id for key, info in again.items()} == {
        key: info.id for key, info in built.items()
    }


@pytest.mark.parametrize("service", list(ServiceName))
def test_a_service_image_runs_its_launcher_offline_unprivileged(
    client: Any, built: dict[str, ImageInfo], service: ServiceName
) -> None:
    image = SERVICES[service].image
    assert "serve" in _run(client, image, ["k2-stack", "--help"])
    assert "Usage: k2-stack serve" in _run(client, image, ["k2-stack", "serve", "--help"])
    output = _run(client, image, ["python", "-c", CHECK_SERVICE, service.value])
    assert "uid: 0" not in output
    assert "version:" in output
    if service is ServiceName.POSTGRES:
        assert _run(client, image, ["id", "-un"]).strip() == "postgres"
    else:
        assert _run(client, image, ["id", "-u"]).strip() == "10001"
    config = client.images.get(image).attrs["Config"]
    assert config["Cmd"] == ["k2-stack", "serve", service.value]
    assert config["Healthcheck"]["Test"] == ["CMD", "k2-stack", "probe", service.value]
    assert config["StopSignal"] == "SIGTERM"


def test_the_worker_image_runs_k2(client: Any, built: dict[str, ImageInfo]) -> None:
    image = built[WORKER].name
    assert "ingest" in _run(client, image, ["k2", "--help"])
    assert _run(client, image, ["id", "-u"]).strip() == "10001"
    _run(client, image, ["python", "-c", CHECK_WORKER])


def _chunks(client: Any, image: str) -> Iterator[bytes]:
    yield from client.api.get_image(image)


def test_no_image_holds_a_secret(client: Any, built: dict[str, ImageInfo]) -> None:
    """Sanity: secrets made here and passed nowhere are in no layer, config or history."""
    made = [secrets.token_urlsafe(24).encode() for _ in range(3)]
    overlap = max(len(secret) for secret in made)
    for info in built.values():
        previous = b""
        for chunk in _chunks(client, info.name):
            window = previous + chunk
            assert not any(secret in window for secret in made), info.name
            previous = window[-overlap:]


def test_image_sizes_cover_every_image(
    client: Any, built: dict[str, ImageInfo], capsys: pytest.CaptureFixture[str]
) -> None:
    sizes = image_sizes(client)
    assert set(sizes) == {info.name for info in built.values()}
    with capsys.disabled():
        print()
        for name, size in sizes.items():
            print(f"  {name:26} {size / 1e6:7.1f} MB")
