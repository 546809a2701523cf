"""Fetching the stack's artifacts from the registries we can reach (Maven Central, Debian).

Everything lands in the shared cache (outside git) under a name that includes a hash of what
was asked for, and is marked complete only after the fetch succeeded: a half-finished or
corrupt download is never mistaken for a good one, and a second run does nothing. One process
fetches a given artifact at a time (a lock beside it): with empty caches, two xdist workers
asking for Prometheus at once extracted over each other (FileExistsError in a cold CI run).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from k2.errors import StackError
from k2stack.locking import file_lock

MAVEN_DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
_COMPLETE = ".complete"


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:12]


def run_step(argv: list[str], what: str, cwd: Path | None = None) -> None:
    """Run an install step, its output streamed to our stderr so the user sees progress."""
    print(f"[k2 stack] {what}", file=sys.stderr, flush=True)
    try:
        subprocess.run(argv, check=True, cwd=cwd, stdout=sys.stderr, stderr=sys.stderr)
    except (OSError, subprocess.CalledProcessError) as e:
        raise StackError(f"{what} failed: {e}") from e


def _mark_complete(path: Path) -> Path:
    (path / _COMPLETE).write_text("ok\n")
    return path


def is_complete(path: Path) -> bool:
    return (path / _COMPLETE).is_file()


@contextmanager
def _exclusive(target: Path) -> Iterator[None]:
    """Hold `target`'s fetch lock: the caller re-checks `is_complete` inside it."""
    with file_lock(target.with_name(target.name + ".lock")):
        yield


def maven_classpath(cache_dir: Path, name: str, pom: Path) -> Path:
    """Resolve a pom's dependencies from Maven Central into a directory of jars.

    Returns the directory; run with `java -cp '<dir>/*'`.
    """
    target = cache_dir / "maven" / f"{name}-{_digest(pom.read_text())}"
    if is_complete(target):
        return target
    with _exclusive(target):
        if is_complete(target):
            return target
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        run_step(
            [
                "mvn",
                "-B",
                "-f",
                str(pom),
                f"{MAVEN_DEPENDENCY_PLUGIN}:copy-dependencies",
                f"-DoutputDirectory={target}",
                "-DincludeScope=runtime",
            ],
            f"resolving {name} from Maven Central",
        )
        if not any(target.glob("*.jar")):
            raise StackError(f"resolving {name} from Maven Central produced no jars in {target}")
        return _mark_complete(target)


def maven_artifact(cache_dir: Path, coordinates: str) -> Path:
    """Download one artifact (`group:artifact:version[:type[:classifier]]`); return its path."""
    target = cache_dir / "maven" / f"artifact-{_digest(coordinates)}"

    def downloaded() -> Path:
        return next(p for p in target.iterdir() if p.name != _COMPLETE)

    if is_complete(target):
        return downloaded()
    with _exclusive(target):
        if is_complete(target):
            return downloaded()
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        run_step(
            [
                "mvn",
                "-B",
                f"{MAVEN_DEPENDENCY_PLUGIN}:copy",
                f"-Dartifact={coordinates}",
                f"-DoutputDirectory={target}",
            ],
            f"downloading {coordinates} from Maven Central",
        )
        files = list(target.iterdir())
        if len(files) != 1:
            raise StackError(f"downloading {coordinates} left {len(files)} files in {target}")
        _mark_complete(target)
        return files[0]


def unpacked_artifact(cache_dir: Path, coordinates: str, name: str) -> Path:
    """A Maven `.tar.gz` artifact, downloaded and unpacked once into the cache; its directory.

    Keyed by the coordinates alone, so a copy of the unpacked directory (K2's images carry
    one, without the archive) is found complete without the archive beside it.
    """
    target = cache_dir / "unpacked" / f"{name}-{_digest(coordinates)}"
    if is_complete(target):
        return target
    with _exclusive(target):
        if is_complete(target):
            return target
        archive = maven_artifact(cache_dir, coordinates)
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        run_step(["tar", "-xzf", str(archive), "-C", str(target)], f"unpacking {archive.name}")
        return _mark_complete(target)


def debian_package(cache_dir: Path, package: str, version: str) -> Path:
    """Fetch a Debian package with apt and extract it (never installed as a system service).

    Returns the extraction root (binaries under `usr/bin`).
    """
    target = cache_dir / "debian" / f"{package}-{version}"
    if is_complete(target):
        return target
    with _exclusive(target):
        if is_complete(target):
            return target
        return _fetch_debian_package(target, f"{package}={version}")


def _fetch_debian_package(target: Path, spec: str) -> Path:
    shutil.rmtree(target, ignore_errors=True)
    downloads = target.with_name(target.name + ".download")
    shutil.rmtree(downloads, ignore_errors=True)
    downloads.mkdir(parents=True)
    try:
        run_step(["apt-get", "download", spec], f"downloading {spec} from Debian", cwd=downloads)
    except StackError:
        # A fresh machine may have no package lists yet.
        run_step(["apt-get", "update", "-q"], "updating Debian package lists")
        run_step(["apt-get", "download", spec], f"downloading {spec} from Debian", cwd=downloads)
    debs = list(downloads.glob("*.deb"))
    if len(debs) != 1:
        raise StackError(f"apt-get download {spec} left {len(debs)} .deb files in {downloads}")
    target.mkdir(parents=True)
    run_step(["dpkg-deb", "-x", str(debs[0]), str(target)], f"extracting {debs[0].name}")
    shutil.rmtree(downloads, ignore_errors=True)
    return _mark_complete(target)


def java_executable() -> str:
    """The JDK's `java`: $JAVA_HOME/bin/java when set, else the one on PATH."""
    home = os.environ.get("JAVA_HOME")
    if home and Path(home, "bin", "java").is_file():
        return str(Path(home, "bin", "java"))
    found = shutil.which("java")
    if found is None:
        raise StackError("no java on PATH and JAVA_HOME unset: install a JDK 17+")
    return found
