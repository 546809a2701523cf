"""The Docker backend of `k2-stack`: the stack spec applied straight to a Docker engine.

`k2-stack up --backend docker` stands up exactly what the Pulumi program declares for the
same stack config (`stack_spec`; a test compares them), without the Pulumi engine: the engine
(`engine.DockerEngine`: the user's, or a private dockerd K2 starts), K2's images
(`images.build_images`, from the base `base_image.ensure_base_image` gives), then the network,
volumes and containers in dependency order (`apply.apply_stack`). It prints the same `K2_*`
endpoints as the local backend.

A Docker stack is a state directory holding its manifest (`docker-stack.json`, mode 0600): the
committed config it started from (`Pulumi.<stack>.yaml`), its name prefix, port offset and
generated secrets, so data and endpoints survive down/up like the local stack's.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import docker

from k2.errors import StackError
from k2stack.docker.spec import StackSpec
from k2stack.docker.stack_spec import host_endpoints, stack_spec
from k2stack.observability import INFRA_DIR
from k2stack.pulumi.config import NAMESPACE, StackConfig, validate
from k2stack.topology import GRAFANA

MANIFEST = "docker-stack.json"
REPO_ROOT = INFRA_DIR.parent


def _say(message: str) -> None:
    print(f"[k2 docker] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class ContainerStatus:
    name: str
    state: str
    health: str
    # A service running healthy, or a job that exited 0.
    ok: bool


class DockerStack:
    """One Docker stack, identified by its state directory."""

    def __init__(
        self,
        state_dir: Path,
        *,
        base_stack: str = "dev",
        log: Callable[[str], None] = _say,
    ) -> None:
        self.state_dir = state_dir
        self.base_stack = base_stack
        self._log = log

    @property
    def manifest_path(self) -> Path:
        return self.state_dir / MANIFEST

    # -- config -------------------------------------------------------------------------------

    def _create_manifest(
        self, client: docker.DockerClient, name_prefix: str, port_offset: int
    ) -> None:
        from k2stack.pulumi.automation import (
            generated_secrets,
            read_config_file,
            required_secret_keys,
        )

        committed = read_config_file(REPO_ROOT / f"Pulumi.{self.base_stack}.yaml")
        committed[f"{NAMESPACE}:namePrefix"] = name_prefix
        committed[f"{NAMESPACE}:portOffset"] = str(port_offset)
        if committed.get(f"{NAMESPACE}:grafana") != "false" and not _pullable(
            client, GRAFANA.image
        ):
            # Grafana is the one upstream image (not packaged where K2 builds its own).
            self._log(f"Grafana is off: {GRAFANA.image} is not in this engine and cannot be pulled")
            committed[f"{NAMESPACE}:grafana"] = "false"
        manifest = {
            "base_stack": self.base_stack,
            "config": committed,
            "secrets": generated_secrets(required_secret_keys(committed)),
        }
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.manifest_path.write_text(json.dumps(manifest, indent=2))
        self.manifest_path.chmod(0o600)

    def config(self) -> StackConfig:
        """The stack's validated config (the same validation as `pulumi up`)."""
        try:
            manifest = json.loads(self.manifest_path.read_text())
        except (OSError, ValueError) as e:
            raise StackError(
                f"no Docker stack at {self.state_dir} ({e}); run `k2-stack up --backend docker`"
            ) from e
        secrets: dict[str, str] = manifest["secrets"]
        return validate(
            {**manifest["config"], **secrets}, frozenset(secrets), manifest["base_stack"]
        )

    def spec(self) -> StackSpec:
        from k2stack.pulumi.program import k2_version

        return stack_spec(self.config(), worker_version=k2_version())

    # -- lifecycle ----------------------------------------------------------------------------

    def client(self) -> docker.DockerClient:
        from k2stack.docker.engine import DockerEngine

        return DockerEngine().ensure().client()

    def up(self, *, name_prefix: str = "k2-local", port_offset: int = 0) -> dict[str, str]:
        """Engine, images, then every container of the spec; returns the host's `K2_*`."""
        from k2stack.docker.apply import apply_stack
        from k2stack.docker.base_image import ensure_base_image
        from k2stack.docker.images import build_images

        client = self.client()
        if not self.manifest_path.is_file():
            self._create_manifest(client, name_prefix, port_offset)
        spec = self.spec()
        build_images(client, ensure_base_image(client), log=self._log)
        apply_stack(client, spec, log=self._log)
        return self.env()

    def down(self, *, purge: bool = False) -> list[str]:
        """Remove the stack's containers and network; `purge` also its volumes and manifest.

        Returns what is left behind that carries the stack's label (empty after a purge).
        """
        from k2stack.docker.apply import destroy_stack, leftovers, remove_container

        spec = self.spec()
        client = self.client()
        if purge:
            destroy_stack(client, spec.prefix, log=self._log)
            self.manifest_path.unlink(missing_ok=True)
            return leftovers(client, spec.prefix)
        for container in reversed(spec.containers):
            remove_container(client, container.name)
        return []

    def status(self) -> list[ContainerStatus]:
        client = self.client()
        out: list[ContainerStatus] = []
        for container in self.spec().containers:
            try:
                found = client.containers.get(container.name)
            except docker.errors.NotFound:
                out.append(ContainerStatus(container.name, "absent", "-", ok=False))
                continue
            state = found.attrs.get("State", {})
            status = str(state.get("Status"))
            health = str((state.get("Health") or {}).get("Status", "-"))
            if container.job:
                ok = status == "exited" and state.get("ExitCode") == 0
                status = f"{status} ({state.get('ExitCode')})"
            else:
                ok = status == "running" and health in ("healthy", "-")
            out.append(ContainerStatus(container.name, status, health, ok))
        return out

    def env(self) -> dict[str, str]:
        return host_endpoints(self.config())


def _pullable(client: docker.DockerClient, image: str) -> bool:
    """Whether `image` is in the engine, or can be pulled into it now."""
    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        try:
            client.images.pull(image)
        except docker.errors.DockerException:
            return False
    return True


def default_docker_state_dir(local_state_dir: Path) -> Path:
    """The Docker stack's state lives beside the local stack's (`<state>/../docker-stack`)."""
    return local_state_dir.parent / "docker-stack"


__all__ = ["DockerStack", "StackError", "default_docker_state_dir"]
