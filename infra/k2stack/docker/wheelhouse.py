"""Wheelhouses for K2's images: the pinned wheels, downloaded on the host with pip.

Builds install from these with `pip --no-index`: the images need no PyPI access at build
time (here a TLS-intercepting proxy whose CA only the host trusts sits between containers and
PyPI), and a wheelhouse is an artifact of the download cache like the launchers' jars: keyed
by what was asked for, marked complete only after the download succeeded.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from k2.errors import StackError
from k2stack.local.install import is_complete

# The images' Python: Debian 12's python3 (3.11, glibc 2.36).
IMAGE_PYTHON = "3.11"
IMAGE_GLIBC_MINOR = 36
# manylinux_2_17 is manylinux2014's other name: nothing older is worth asking for.
_OLDEST_GLIBC_MINOR = 17
_COMPLETE = ".complete"


def platform_tags(machine: str) -> tuple[str, ...]:
    """The wheel platforms a glibc-2.36 Linux on `machine` (x86_64, aarch64) runs.

    pip does not widen a `manylinux_2_X` platform to older ones by itself: list them all.
    """
    glibc = [
        f"manylinux_2_{minor}_{machine}"
        for minor in range(IMAGE_GLIBC_MINOR, _OLDEST_GLIBC_MINOR - 1, -1)
    ]
    legacy = [f"manylinux{tag}_{machine}" for tag in ("2014", "2010", "1")]
    return (*glibc, *legacy, f"linux_{machine}", "any")


def _pip_candidates() -> list[str]:
    # The project's venv is made by uv and holds no pip; ./task's bootstrap venv does.
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    found = [sys.executable, str(Path(cache) / "k2" / "bootstrap-venv" / "bin" / "python")]
    system = shutil.which(os.environ.get("K2_PYTHON", "python3"))
    return [*found, *([system] if system else [])]


def pip_command() -> list[str]:
    """`<python> -m pip` for the first Python here that has pip."""
    for python in _pip_candidates():
        if not Path(python).is_file():
            continue
        probe = subprocess.run([python, "-m", "pip", "--version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return [python, "-m", "pip"]
    raise StackError(
        "no Python with pip found to download wheels (tried: sys.executable, "
        "the ./task bootstrap venv, python3): install python3-pip"
    )


def wheelhouse_key(requirements: Sequence[str], constraints: str, machine: str) -> str:
    text = "\0".join([*requirements, "--", constraints, machine, IMAGE_PYTHON])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def ensure_wheelhouse(
    cache_dir: Path,
    name: str,
    requirements: Sequence[str],
    constraints: Path,
    *,
    machine: str,
    log: Callable[[str], None],
) -> Path:
    """The directory of wheels that installs `requirements` (pinned by `constraints`)."""
    target = (
        cache_dir
        / "wheels"
        / f"{name}-{wheelhouse_key(requirements, constraints.read_text(), machine)}"
    )
    if is_complete(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # Downloaded beside the target and renamed into place: never half a wheelhouse.
    staging = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        requirements_file = staging / "requirements.txt"
        requirements_file.write_text("\n".join(requirements) + "\n")
        wheels = staging / "wheels"
        platforms = [arg for tag in platform_tags(machine) for arg in ("--platform", tag)]
        argv = [
            *pip_command(),
            "download",
            "--quiet",
            "--disable-pip-version-check",
            "--only-binary=:all:",
            "--python-version",
            IMAGE_PYTHON,
            "--implementation",
            "cp",
            *("--abi", f"cp{IMAGE_PYTHON.replace('.', '')}", "--abi", "abi3", "--abi", "none"),
            *platforms,
            "--dest",
            str(wheels),
            "--requirement",
            str(requirements_file),
            "--constraint",
            str(constraints),
        ]
        log(f"downloading the {name} wheelhouse from PyPI ({len(requirements)} requirements)")
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-30:])
            raise StackError(f"pip download of the {name} wheelhouse failed:\n{tail}")
        (wheels / _COMPLETE).write_text("ok\n")
        shutil.rmtree(target, ignore_errors=True)
        wheels.rename(target)
    except OSError as e:
        raise StackError(f"making the {name} wheelhouse in {target} failed: {e}") from e
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
