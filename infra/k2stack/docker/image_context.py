"""Build contexts of K2's images: staged in a directory, then hashed.

A context holds only what its Dockerfile copies: the Dockerfile, pinned requirements, a
wheelhouse, the launcher's artifact directories at their download-cache paths, K2's source.
Big files are hard-linked from the download cache (copied when that is impossible, or when
their mode would not let the image's unprivileged user read them).

The hash covers every path, kind, executable bit and byte of the context plus the parent
image's id: equal hashes mean `docker build` would produce the same image.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from k2.errors import StackError

SOURCE_DIR = "src"
# The parts of the repository an image needs: both packages (services/k2, infra/k2stack),
# what the code reads relative to itself (contracts/, infra/prometheus/, infra/grafana/).
SOURCE_ROOTS = ("pyproject.toml", "services", "infra", "contracts")
# Never part of an image: caches and build leftovers, and the Dockerfiles themselves (each
# context carries its own), so editing one rebuilds only that image.
_SKIP_DIRS = frozenset({"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache", "build"})
_SKIP_SUFFIXES = (".pyc", ".pyo", ".egg-info")
_SKIP_PATHS = frozenset({"infra/images"})
_READABLE_FILE_MODES = frozenset({0o644, 0o755})
_CHUNK = 1 << 20


@dataclass(frozen=True)
class ContextSpec:
    """What one build context holds."""

    dockerfile: Path
    # Context path -> text (requirements.txt).
    files: Mapping[str, str] = field(default_factory=dict)
    # Context path -> a directory to place there whole (wheelhouse, cache artifacts).
    trees: Mapping[str, Path] = field(default_factory=dict)
    # Whether K2's source tree goes under `src/`.
    source: bool = False


def source_files(repo: Path) -> Iterator[Path]:
    """K2's source files, relative to the repository root, in a stable order."""
    for root in SOURCE_ROOTS:
        path = repo / root
        if path.is_file():
            yield Path(root)
        elif path.is_dir():
            yield from _walk(repo, path)
        else:
            raise StackError(f"{path} is missing: K2's images build from a source tree")


def _walk(repo: Path, directory: Path) -> Iterator[Path]:
    for entry in sorted(directory.iterdir()):
        relative = entry.relative_to(repo)
        if relative.as_posix() in _SKIP_PATHS or entry.name.startswith("."):
            continue
        if entry.is_dir() and not entry.is_symlink():
            if entry.name not in _SKIP_DIRS and not entry.name.endswith(_SKIP_SUFFIXES):
                yield from _walk(repo, entry)
        elif not entry.name.endswith(_SKIP_SUFFIXES):
            yield relative


def _place_file(source: Path, target: Path) -> None:
    """Hard-link `source` at `target`, or copy it with a mode everyone can read."""
    mode = stat.S_IMODE(source.stat().st_mode)
    if mode in _READABLE_FILE_MODES:
        try:
            os.link(source, target)
        except OSError:
            pass  # another filesystem, or links not allowed: copy below
        else:
            return
    shutil.copyfile(source, target)
    target.chmod(0o755 if mode & stat.S_IXUSR else 0o644)


def place_tree(source: Path, target: Path) -> None:
    """Recreate directory `source` at `target`: directories 0755, files linked or copied."""
    target.mkdir(parents=True, exist_ok=True)
    target.chmod(0o755)
    for entry in sorted(source.iterdir()):
        destination = target / entry.name
        if entry.is_symlink():
            destination.symlink_to(entry.readlink())
        elif entry.is_dir():
            place_tree(entry, destination)
        else:
            _place_file(entry, destination)


def stage(spec: ContextSpec, repo: Path, context: Path) -> None:
    """Write the context `spec` describes into the empty directory `context`."""
    try:
        context.chmod(0o755)
        shutil.copyfile(spec.dockerfile, context / "Dockerfile")
        for name, text in spec.files.items():
            (context / name).write_text(text)
        for name, tree in spec.trees.items():
            place_tree(tree, context / name)
        if spec.source:
            for relative in source_files(repo):
                destination = context / SOURCE_DIR / relative
                destination.parent.mkdir(parents=True, exist_ok=True)
                _place_file(repo / relative, destination)
    except OSError as e:
        raise StackError(f"staging the build context in {context} failed: {e}") from e


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _entries(directory: Path, root: Path) -> Iterator[str]:
    for entry in sorted(directory.iterdir()):
        relative = entry.relative_to(root).as_posix()
        if entry.is_symlink():
            yield f"link {relative} {entry.readlink()}"
        elif entry.is_dir():
            yield f"dir {relative}"
            yield from _entries(entry, root)
        else:
            executable = "x" if entry.stat().st_mode & stat.S_IXUSR else "-"
            yield f"file {relative} {executable} {_file_digest(entry)}"


def context_hash(context: Path, parent_id: str) -> str:
    """The content hash of a staged context built on the image `parent_id`."""
    digest = hashlib.sha256(f"parent {parent_id}\n".encode())
    try:
        for line in _entries(context, context):
            digest.update(line.encode() + b"\n")
    except OSError as e:
        raise StackError(f"hashing the build context {context} failed: {e}") from e
    return digest.hexdigest()
