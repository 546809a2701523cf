"""K2's own Docker images, built here from the artifacts the local backend runs.

No image is pulled: the runtime image builds on a Debian base the caller gives (K2's
debootstrap image, or `debian:bookworm-slim` where a registry is reachable), the JVM and
service images on the runtime, the worker on the runtime. Every service image runs K2's own
launcher (`k2-stack serve <service>`), with the launcher's artifact directories copied from
the host's download cache to the same paths under the image's cache (`/opt/k2/cache`).

Each image's build context is staged and hashed (`image_context`); an image whose label
already carries that hash is reused as it is, so a second `build_images` builds nothing.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from k2.errors import StackError
from k2stack.docker.image_context import ContextSpec, context_hash, stage
from k2stack.docker.image_recipes import LOCK_FILE, REPO_ROOT, Recipe, plan, recipes
from k2stack.docker.wheelhouse import ensure_wheelhouse
from k2stack.local.context import StackContext, default_cache_dir
from k2stack.local.ports import default_ports
from k2stack.local.services import launchers
from k2stack.locking import file_lock
from k2stack.topology import Credentials, ServiceName

if TYPE_CHECKING:
    import docker  # type: ignore[import-untyped, unused-ignore]

CONTEXT_HASH_LABEL = "dev.k2.context-hash"
IMAGE_KEY_LABEL = "dev.k2.image"
IMAGE_CACHE_DIR = "cache"
LOG_TAIL_LINES = 30
# Build contexts are staged inside the download cache: the same filesystem, so artifacts
# are hard-linked rather than copied.
CONTEXTS_DIR = "image-contexts"
_LOCK_FILE = Path(tempfile.gettempdir()) / "k2-images.lock"
# Docker's architecture names -> the wheel platforms' names.
_WHEEL_MACHINES = {"amd64": "x86_64", "arm64": "aarch64"}


def _say(message: str) -> None:
    print(f"[k2 images] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class ImageInfo:
    """One image after `build_images`: built now, or reused because nothing changed."""

    key: str
    name: str
    id: str
    size: int
    built: bool
    seconds: float
    context_hash: str


@dataclass(frozen=True)
class ImageSummary:
    """One of K2's images present in the engine."""

    key: str
    name: str
    id: str
    size: int
    context_hash: str | None
    created: str


def build_images(
    client: docker.DockerClient,
    base: str,
    services: Iterable[str] | None = None,
    *,
    cache_dir: Path | None = None,
    repo: Path = REPO_ROOT,
    no_cache: bool = False,
    log: Callable[[str], None] = _say,
) -> dict[str, ImageInfo]:
    """Build (or reuse) K2's images; the result is keyed by image key, parents first.

    `services` names images by key (a topology service name, `runtime`, `jvm`,
    `ingest-worker`); None builds all. The images they build on come first, always.
    Missing artifacts and wheels are downloaded into the cache first. `no_cache` rebuilds
    every step of every image, even those whose context has not changed.
    """
    cache = cache_dir or default_cache_dir()
    machine = _wheel_machine(client)
    done: dict[str, ImageInfo] = {}
    # One build at a time on this machine: concurrent builds would race for the same tags.
    with file_lock(_LOCK_FILE):
        for recipe in plan(recipes(repo), services):
            parent_ref = base if recipe.parent is None else done[recipe.parent].name
            done[recipe.key] = _build_one(
                client,
                recipe,
                parent_ref,
                cache=cache,
                repo=repo,
                machine=machine,
                no_cache=no_cache,
                log=log,
            )
        _remove_superseded(client)
    return done


def image_summaries(client: docker.DockerClient, repo: Path = REPO_ROOT) -> list[ImageSummary]:
    """K2's images present in the engine, in build order."""
    found: list[ImageSummary] = []
    for recipe in recipes(repo).values():
        image = _get(client, recipe.name)
        if image is None:
            continue
        found.append(
            ImageSummary(
                key=recipe.key,
                name=recipe.name,
                id=image.id,
                size=int(image.attrs["Size"]),
                context_hash=(image.labels or {}).get(CONTEXT_HASH_LABEL),
                created=str(image.attrs["Created"]),
            )
        )
    return found


def image_sizes(client: docker.DockerClient, repo: Path = REPO_ROOT) -> dict[str, int]:
    """Each present image's size in bytes (what `docker images` shows), by image name."""
    return {summary.name: summary.size for summary in image_summaries(client, repo)}


def _build_one(
    client: docker.DockerClient,
    recipe: Recipe,
    parent_ref: str,
    *,
    cache: Path,
    repo: Path,
    machine: str,
    no_cache: bool,
    log: Callable[[str], None],
) -> ImageInfo:
    started = time.monotonic()
    parent = _get(client, parent_ref)
    if parent is None:
        raise StackError(f"{recipe.name}: its parent image {parent_ref} is not in the engine")
    spec = _context_spec(recipe, cache=cache, repo=repo, machine=machine, log=log)
    existing = _get(client, recipe.name)
    work = cache / CONTEXTS_DIR
    try:
        work.mkdir(parents=True, exist_ok=True)
        context = Path(tempfile.mkdtemp(prefix=f"{recipe.key}.", dir=work))
    except OSError as e:
        raise StackError(f"cannot make a build context under {work}: {e}") from e
    try:
        stage(spec, repo, context)
        digest = context_hash(context, parent.id)
        current = existing is not None and (existing.labels or {}).get(CONTEXT_HASH_LABEL) == digest
        if current and not no_cache:
            log(f"{recipe.name}: up to date ({digest[:12]})")
            return _info(recipe, existing, built=False, started=started, digest=digest)
        log(f"building {recipe.name} on {parent_ref}")
        image_id = _docker_build(
            client,
            recipe,
            context,
            parent_ref=parent_ref,
            digest=digest,
            no_cache=no_cache,
            log=log,
        )
    finally:
        shutil.rmtree(context, ignore_errors=True)
    image = _get(client, image_id)
    if image is None:
        raise StackError(f"{recipe.name}: built {image_id}, which the engine no longer has")
    log(f"{recipe.name}: built in {time.monotonic() - started:.1f}s")
    return _info(recipe, image, built=True, started=started, digest=digest)


def _context_spec(
    recipe: Recipe, *, cache: Path, repo: Path, machine: str, log: Callable[[str], None]
) -> ContextSpec:
    files: dict[str, str] = {}
    trees: dict[str, Path] = {}
    if recipe.requirements:
        files["requirements.txt"] = "\n".join(recipe.requirements) + "\n"
        trees["wheels"] = ensure_wheelhouse(
            cache, recipe.key, recipe.requirements, repo / LOCK_FILE, machine=machine, log=log
        )
    if recipe.service is not None:
        for artifact in _artifacts(recipe.service, cache):
            trees[f"{IMAGE_CACHE_DIR}/{artifact.relative_to(cache).as_posix()}"] = artifact
    return ContextSpec(recipe.dockerfile, files=files, trees=trees, source=recipe.source)


def _artifacts(service: ServiceName, cache: Path) -> tuple[Path, ...]:
    """The launcher's cache directories, fetched first if missing (as `install` would)."""
    ctx = StackContext(
        # Never created: `artifacts` reads only the cache.
        state_dir=Path(tempfile.gettempdir()) / "k2-images-unused-state",
        cache_dir=cache,
        ports=default_ports(),
        credentials=Credentials(postgres_password="", s3_access_key_id="", s3_secret_access_key=""),
    )
    found = launchers()[service].artifacts(ctx)
    resolved = cache.resolve()
    for path in found:
        if not path.resolve().is_relative_to(resolved):
            raise StackError(f"{service}: artifact {path} is outside the cache {cache}")
    return tuple(cache / path.resolve().relative_to(resolved) for path in found)


def _docker_build(
    client: docker.DockerClient,
    recipe: Recipe,
    context: Path,
    *,
    parent_ref: str,
    digest: str,
    no_cache: bool,
    log: Callable[[str], None],
) -> str:
    """Run the legacy builder on `context`; the new image's id."""
    from docker.errors import DockerException  # type: ignore[import-untyped, unused-ignore]

    tail: deque[str] = deque(maxlen=LOG_TAIL_LINES)
    image_id: str | None = None
    try:
        for chunk in client.api.build(
            path=str(context),
            tag=recipe.name,
            buildargs={recipe.parent_arg: parent_ref},
            labels={CONTEXT_HASH_LABEL: digest, IMAGE_KEY_LABEL: recipe.key},
            # Never pull (no registry here); intermediate containers removed even on failure.
            pull=False,
            nocache=no_cache,
            rm=True,
            forcerm=True,
            decode=True,
        ):
            image_id = _consume(chunk, tail, log) or image_id
    except StackError as e:
        raise StackError(f"building {recipe.name} failed: {e}\n" + "\n".join(tail)) from e
    # requests' errors (a dropped engine connection) are OSErrors.
    except (DockerException, OSError) as e:
        raise StackError(f"building {recipe.name} failed: {e}\n" + "\n".join(tail)) from e
    if image_id is not None:
        return image_id
    image = _get(client, recipe.name)
    if image is None:
        raise StackError(f"building {recipe.name} ended without an image:\n" + "\n".join(tail))
    return str(image.id)


def _consume(chunk: dict[str, Any], tail: deque[str], log: Callable[[str], None]) -> str | None:
    """Log one decoded chunk of the build stream; the image id when it announces one."""
    if "error" in chunk:
        raise StackError(str(chunk["error"]).strip())
    for line in str(chunk.get("stream") or "").splitlines():
        if line.strip():
            tail.append(line)
            log(line)
    aux = chunk.get("aux")
    if isinstance(aux, dict) and isinstance(aux.get("ID"), str):
        return str(aux["ID"])
    return None


def _remove_superseded(client: docker.DockerClient) -> None:
    """Drop K2's images that rebuilds replaced (untagged, still labelled as ours).

    The engine refuses while a container or a child image uses one: it goes on a later build.
    Build stages carry no label and stay, as the layer cache of the next build.
    """
    from docker.errors import DockerException

    try:
        stale = client.images.list(filters={"dangling": True, "label": IMAGE_KEY_LABEL})
    except DockerException as e:
        raise StackError(f"cannot list superseded images: {e}") from e
    for image in stale:
        with contextlib.suppress(DockerException):
            client.images.remove(image.id)


def _get(client: docker.DockerClient, ref: str) -> Any:
    from docker.errors import DockerException, ImageNotFound

    try:
        return client.images.get(ref)
    except ImageNotFound:
        return None
    except DockerException as e:
        raise StackError(f"cannot inspect image {ref}: {e}") from e


def _info(recipe: Recipe, image: Any, *, built: bool, started: float, digest: str) -> ImageInfo:
    return ImageInfo(
        key=recipe.key,
        name=recipe.name,
        id=str(image.id),
        size=int(image.attrs["Size"]),
        built=built,
        seconds=time.monotonic() - started,
        context_hash=digest,
    )


def _wheel_machine(client: docker.DockerClient) -> str:
    from docker.errors import DockerException

    try:
        arch = str(client.version().get("Arch", ""))
    except DockerException as e:
        raise StackError(f"cannot ask the Docker engine its architecture: {e}") from e
    machine = _WHEEL_MACHINES.get(arch)
    if machine is None:
        raise StackError(f"K2's images support {sorted(_WHEEL_MACHINES)} engines, not {arch!r}")
    return machine
