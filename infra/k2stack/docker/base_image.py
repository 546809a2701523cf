"""The image K2's Dockerfiles build FROM (their `BASE` build arg): a registry's, or K2's own.

With `K2_DOCKER_BASE_IMAGE` set (a machine with a registry, e.g. `debian:bookworm-slim`) that
image is used, pulled when absent. Otherwise `k2/base:bookworm` is built here from Debian
packages, no registry needed: `debootstrap --variant=minbase bookworm` from the mirror apt
already uses, apt's caches and package lists emptied (lists baked into an image are stale at
once; K2's images run `apt-get update` themselves), imported as one layer. Labels record the
recipe (variant, suite, mirror): an image under that tag made another way is rebuilt, never
trusted.

Measured here (2 shared cores, deb.debian.org): 38 s from nothing to the tagged image
(debootstrap, clean, import); the image is 117 MB (one made by hand the same way but keeping
apt's package lists: 167 MB).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, cast

import docker
from docker.errors import DockerException, ImageNotFound
from requests.exceptions import RequestException

from k2.errors import StackError
from k2stack.docker.engine import apt_install
from k2stack.local.install import run_step
from k2stack.locking import file_lock

BASE_IMAGE_VAR = "K2_DOCKER_BASE_IMAGE"
SUITE = "bookworm"
VARIANT = "minbase"
K2_BASE_IMAGE = f"k2/base:{SUITE}"
RECIPE_LABEL = "dev.k2.base"
MIRROR_LABEL = "dev.k2.base.mirror"
APT_DIR = Path("/etc/apt")
DEBOOTSTRAP = Path("/usr/sbin/debootstrap")
# Callers at the same time (xdist workers, two shells) build once; the others then reuse it.
LOCK_FILE = Path(tempfile.gettempdir()) / "k2-base-image.lock"
_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _say(message: str) -> None:
    print(f"[k2 docker] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class AptSource:
    types: tuple[str, ...]
    uris: tuple[str, ...]
    suites: tuple[str, ...]
    components: tuple[str, ...]


def _one_line_sources(text: str) -> list[AptSource]:
    """`deb [opt=value ...] URI SUITE COMPONENT...` lines (sources.list, *.list)."""
    sources = []
    for raw in text.splitlines():
        words = raw.split("#", 1)[0].split()
        if len(words) < 3 or words[0] not in {"deb", "deb-src"}:
            continue
        rest = words[1:]
        if rest[0].startswith("["):
            while rest and not rest[0].endswith("]"):
                rest = rest[1:]
            rest = rest[1:]
        if len(rest) >= 2:
            sources.append(AptSource((words[0],), (rest[0],), (rest[1],), tuple(rest[2:])))
    return sources


def _deb822_sources(text: str) -> list[AptSource]:
    """Stanzas of `Field: value` lines separated by blank lines (*.sources)."""
    sources = []
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        last = ""
        for line in stanza.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            if line[0] in " \t" and last:
                fields[last] += " " + line.strip()  # a field's continuation line
            elif ":" in line:
                key, value = line.split(":", 1)
                last = key.strip().lower()
                fields[last] = value.strip()
        if fields.get("enabled", "yes").lower() == "no" or "uris" not in fields:
            continue
        sources.append(
            AptSource(
                *(
                    tuple(fields.get(k, "").split())
                    for k in ("types", "uris", "suites", "components")
                )
            )
        )
    return sources


def apt_sources(apt_dir: Path = APT_DIR) -> list[AptSource]:
    """apt's sources in apt's order: sources.list, then sources.list.d/ by file name."""
    sources = []
    main_list = apt_dir / "sources.list"
    if main_list.is_file():
        sources += _one_line_sources(main_list.read_text())
    parts = apt_dir / "sources.list.d"
    for path in sorted(parts.iterdir() if parts.is_dir() else []):
        if path.suffix == ".list":
            sources += _one_line_sources(path.read_text())
        elif path.suffix == ".sources":
            sources += _deb822_sources(path.read_text())
    return sources


def debian_mirror(apt_dir: Path = APT_DIR, suite: str = SUITE) -> str:
    """The first http(s) mirror apt uses for `suite` main."""
    for source in apt_sources(apt_dir):
        if "deb" in source.types and suite in source.suites and "main" in source.components:
            for uri in source.uris:
                if uri.startswith(("http://", "https://")):
                    return uri.rstrip("/")
    raise StackError(
        f"apt has no http(s) source for `{suite} main` in {apt_dir}: add one, or set "
        f"{BASE_IMAGE_VAR} to an image this machine can pull"
    )


def ensure_base_image(
    client: docker.DockerClient, env: Mapping[str, str] | None = None, apt_dir: Path = APT_DIR
) -> str:
    """The image reference to pass as the `BASE` build arg, present in the engine."""
    env = os.environ if env is None else env
    if ref := env.get(BASE_IMAGE_VAR):
        return _pulled(client, ref)
    mirror = debian_mirror(apt_dir)
    wanted = {RECIPE_LABEL: f"debootstrap-{VARIANT}-{SUITE}", MIRROR_LABEL: mirror}
    with file_lock(LOCK_FILE):
        labels = _labels(client, K2_BASE_IMAGE)
        if labels is not None and wanted.items() <= labels.items():
            return K2_BASE_IMAGE
        if labels is not None:
            _say(f"{K2_BASE_IMAGE} exists but was not made by this recipe ({wanted}): rebuilding")
        _build(client, mirror, wanted)
    return K2_BASE_IMAGE


def _pulled(client: docker.DockerClient, ref: str) -> str:
    if _labels(client, ref) is not None:
        return ref
    _say(f"pulling {ref} ({BASE_IMAGE_VAR})")
    try:
        client.images.pull(ref)
    except (DockerException, RequestException) as e:
        raise StackError(
            f"could not pull {BASE_IMAGE_VAR}={ref}: {e}\n"
            f"make its registry reachable, or unset {BASE_IMAGE_VAR} to build K2's own base"
        ) from e
    return ref


def _labels(client: docker.DockerClient, ref: str) -> dict[str, str] | None:
    try:
        return dict(client.images.get(ref).labels)
    except ImageNotFound:
        return None
    except (DockerException, RequestException) as e:
        raise StackError(f"could not look up {ref}: {e}") from e


def _build(client: docker.DockerClient, mirror: str, labels: dict[str, str]) -> None:
    if os.geteuid() != 0:
        raise StackError(
            f"building {K2_BASE_IMAGE} needs root (debootstrap): run as root, or set "
            f"{BASE_IMAGE_VAR} to an image this machine can pull (e.g. debian:bookworm-slim)"
        )
    if not DEBOOTSTRAP.exists():
        apt_install("debootstrap")
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="k2-base-rootfs-"))
    rootfs = work / "rootfs"
    try:
        run_step(
            [str(DEBOOTSTRAP), f"--variant={VARIANT}", SUITE, str(rootfs), mirror],
            f"debootstrap --variant={VARIANT} {SUITE} from {mirror}",
        )
        run_step(["chroot", str(rootfs), "apt-get", "clean"], "apt-get clean in the new root")
        lists = rootfs / "var/lib/apt/lists"
        for path in lists.iterdir():
            if path.is_file() and path.name != "lock":
                path.unlink()
        _import(client, rootfs, labels)
    finally:
        _remove_work_dir(work)
    size_mb = client.images.get(K2_BASE_IMAGE).attrs["Size"] / 1e6
    _say(f"built {K2_BASE_IMAGE} in {time.monotonic() - started:.0f} s ({size_mb:.0f} MB)")


def _import(client: docker.DockerClient, rootfs: Path, labels: dict[str, str]) -> None:
    _say(f"importing the root file system as {K2_BASE_IMAGE}")
    changes = [
        f"ENV PATH={_PATH}",
        'CMD ["bash"]',
        *(f"LABEL {key}={value}" for key, value in labels.items()),
    ]
    repository, tag = K2_BASE_IMAGE.split(":")
    tar = ["tar", "--numeric-owner", "-C", str(rootfs), "-c", "."]
    with subprocess.Popen(tar, stdout=subprocess.PIPE) as proc:
        stream = cast("IO[bytes]", proc.stdout)  # stdout=PIPE: never None
        chunks = iter(partial(stream.read, 1 << 20), b"")
        try:
            result = client.api.import_image_from_stream(
                chunks, repository=repository, tag=tag, changes=changes
            )
        except (DockerException, RequestException) as e:
            proc.kill()
            raise StackError(f"importing {K2_BASE_IMAGE} failed: {e}") from e
    if proc.returncode != 0:
        raise StackError(f"`tar -C {rootfs} -c .` failed with exit status {proc.returncode}")
    if '"error' in str(result):
        raise StackError(f"importing {K2_BASE_IMAGE} failed: {result}")


def _remove_work_dir(work: Path) -> None:
    """Delete the build directory, but never through a mount into the host.

    debootstrap bind-mounts host devices and mounts /proc inside the new root while it runs and
    unmounts them when it ends; after a crash half-way, rmtree would walk into the host's /dev.
    """
    for mount in sorted(_mounts_under(work), key=lambda p: len(p.parts), reverse=True):
        subprocess.run(["umount", "-l", str(mount)], check=False)
    if still := _mounts_under(work):
        _say(f"left {work} in place: {len(still)} mount(s) under it would not unmount")
        return
    shutil.rmtree(work, ignore_errors=True)


def _mounts_under(directory: Path) -> list[Path]:
    mounts = Path("/proc/self/mounts").read_text().splitlines()
    points = [Path(line.split()[1]) for line in mounts]
    return [p for p in points if p == directory or directory in p.parents]
