"""Which images K2 builds, from which Dockerfile, on which parent, with which wheels.

The service images are the topology's (`SERVICES[name].image`, one per service, tagged with
the service's version); the runtime, JVM and ingest-worker images carry K2's own version.
Every Dockerfile lives in `infra/images/`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from k2.errors import StackError
from k2stack.docker.image_pins import (
    JVM_PACKAGE,
    SEAWEEDFS_PACKAGE,
    SETUPTOOLS,
    STACK_LIBRARIES,
    lock_pins,
    project_dependencies,
    project_version,
)
from k2stack.observability import INFRA_DIR
from k2stack.topology import K2_IMAGE_REPOSITORY, TOPOLOGY, ServiceName

REPO_ROOT = INFRA_DIR.parent
IMAGES_DIR = INFRA_DIR / "images"
LOCK_FILE = "requirements.lock"

RUNTIME = "runtime"
JVM = "jvm"
WORKER = "ingest-worker"
# The services whose launchers run a JVM: they build on the JVM image.
JVM_SERVICES = frozenset({ServiceName.KAFKA, ServiceName.REGISTRY, ServiceName.ICEBERG_REST})
# The build argument each parent is passed as (the Dockerfiles' `ARG` lines).
_PARENT_ARGS = {None: "BASE", RUNTIME: "RUNTIME", JVM: "JVM"}


@dataclass(frozen=True)
class Recipe:
    """One image: its key (a service name, `runtime`, `jvm`, `ingest-worker`) and how to build it."""

    key: str
    name: str
    dockerfile: Path
    # The recipe key of the image it builds FROM; None: the Debian base image.
    parent: str | None
    # Pinned requirements installed from a wheelhouse; none: no wheelhouse.
    requirements: tuple[str, ...] = ()
    # The service whose launcher's artifacts the image carries.
    service: ServiceName | None = None
    # Whether K2's source is the image's top layer.
    source: bool = True

    @property
    def parent_arg(self) -> str:
        return _PARENT_ARGS[self.parent]


def k2_image_name(key: str, version: str) -> str:
    return f"{K2_IMAGE_REPOSITORY}/{key}:{version}"


def recipes(repo: Path = REPO_ROOT) -> dict[str, Recipe]:
    """Every image, parents before the images built on them."""
    pyproject = repo / "pyproject.toml"
    try:
        lock = (repo / LOCK_FILE).read_text()
    except OSError as e:
        raise StackError(f"cannot read {repo / LOCK_FILE}: {e}") from e
    version = project_version(pyproject)
    images = repo / IMAGES_DIR.relative_to(REPO_ROOT)
    ordered = [
        Recipe(
            RUNTIME,
            k2_image_name(RUNTIME, version),
            images / "runtime.Dockerfile",
            parent=None,
            requirements=(*lock_pins(lock, STACK_LIBRARIES), SETUPTOOLS),
            source=False,
        ),
        Recipe(
            JVM,
            k2_image_name(JVM, version),
            images / "jvm.Dockerfile",
            parent=RUNTIME,
            requirements=lock_pins(lock, [JVM_PACKAGE]),
            source=False,
        ),
    ]
    for spec in TOPOLOGY:
        wheels = [SEAWEEDFS_PACKAGE] if spec.name is ServiceName.SEAWEEDFS else []
        ordered.append(
            Recipe(
                spec.name.value,
                spec.image,
                images / f"{spec.name.value}.Dockerfile",
                parent=JVM if spec.name in JVM_SERVICES else RUNTIME,
                requirements=lock_pins(lock, wheels),
                service=spec.name,
            )
        )
    ordered.append(
        Recipe(
            WORKER,
            k2_image_name(WORKER, version),
            images / "worker.Dockerfile",
            parent=RUNTIME,
            requirements=project_dependencies(pyproject),
        )
    )
    return {recipe.key: recipe for recipe in ordered}


def plan(all_recipes: dict[str, Recipe], wanted: Iterable[str] | None) -> list[Recipe]:
    """The recipes to build for `wanted` (None: all), each parent before its children."""
    keys = list(all_recipes) if wanted is None else [str(key) for key in wanted]
    unknown = sorted(set(keys) - set(all_recipes))
    if unknown:
        raise StackError(f"no such image: {', '.join(unknown)} (known: {', '.join(all_recipes)})")
    needed: set[str] = set()
    for key in keys:
        current: str | None = key
        while current is not None:
            needed.add(current)
            current = all_recipes[current].parent
    return [recipe for key, recipe in all_recipes.items() if key in needed]
