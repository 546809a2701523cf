"""The pinned Pulumi CLI, built from the Go module proxy (the only place we can get it from).

Layout, shared by every checkout on the machine: `<cache>/pulumi-<version>/bin/` holds
`pulumi` and `pulumi-resource-pulumi-python` (the dynamic-provider launcher the engine
starts for K2's Engine API resources). The build goes to a temporary directory renamed to
`bin` only once complete, so a present `bin` is always a whole build; it is reused when
`pulumi version` answers the pinned version.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

from k2.errors import StackError
from k2stack.local.install import run_step
from k2stack.locking import file_lock

PULUMI_VERSION = "3.274.0"
_PKG = "github.com/pulumi/pulumi/pkg/v3"
_SDK = "github.com/pulumi/pulumi/sdk/v3"
# `go install pkg@version` refuses: pkg's go.mod replaces sdk with `../sdk`, so both modules
# are copied side by side and built in place.
_LDFLAGS = f"-s -w -X {_SDK}/go/common/version.Version=v{PULUMI_VERSION}"
PYTHON_PROVIDER = "pulumi-resource-pulumi-python"


def cli_root(cache_dir: Path) -> Path:
    """`<cache>/pulumi-<version>`: `PulumiCommand(root=...)` expects `bin/pulumi` below it."""
    return cache_dir / f"pulumi-{PULUMI_VERSION}"


def _progress(what: str) -> None:
    print(f"[k2 stack] {what}", file=sys.stderr, flush=True)


def answers_pinned_version(pulumi: Path) -> bool:
    """Whether `pulumi version` runs and prints the pinned version."""
    if not pulumi.is_file():
        return False
    try:
        result = subprocess.run(
            [str(pulumi), "version"],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PULUMI_SKIP_UPDATE_CHECK": "1"},
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0 and result.stdout.strip() == f"v{PULUMI_VERSION}"


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        raise StackError(
            f"the Pulumi CLI v{PULUMI_VERSION} is built from the Go module proxy, which needs Go "
            "(1.26 or newer) on PATH: `go` was not found"
        )
    return go


def _download(go: str) -> dict[str, Path]:
    """Download pkg and sdk at the pinned version; return each module's directory."""
    _progress(f"downloading Pulumi v{PULUMI_VERSION} sources from the Go module proxy")
    modules = [f"{_PKG}@v{PULUMI_VERSION}", f"{_SDK}@v{PULUMI_VERSION}"]
    try:
        result = subprocess.run(
            [go, "mod", "download", "-json", *modules],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError) as e:
        detail = getattr(e, "stdout", "") or getattr(e, "stderr", "") or ""
        raise StackError(
            f"go mod download of Pulumi v{PULUMI_VERSION} failed: {e}\n{detail}"
        ) from e
    # The output is one JSON object per module, concatenated (not a JSON array).
    decoder, text, dirs = json.JSONDecoder(), result.stdout, {}
    position = 0
    while text[position:].strip():
        position += len(text[position:]) - len(text[position:].lstrip())
        entry, position = decoder.raw_decode(text, position)
        if entry.get("Error"):
            raise StackError(f"go mod download {entry['Path']}: {entry['Error']}")
        dirs[entry["Path"]] = Path(entry["Dir"])
    return dirs


def _writable_copy(source: Path, target: Path) -> None:
    # The module cache is read-only; the build (and the later cleanup) need to write.
    shutil.copytree(source, target, symlinks=True)
    for path in (target, *target.rglob("*")):
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | stat.S_IWUSR)


def _install_python_provider(sdk_dir: Path, bin_dir: Path) -> None:
    target = bin_dir / PYTHON_PROVIDER
    shutil.copyfile(sdk_dir / "python" / "dist" / PYTHON_PROVIDER, target)
    target.chmod(0o755)


def _build(go: str, root: Path) -> None:
    dirs = _download(go)
    work = Path(tempfile.mkdtemp(prefix="pulumi-src-"))
    staging = Path(tempfile.mkdtemp(prefix="bin.tmp-", dir=root))
    try:
        _writable_copy(dirs[_PKG], work / "pkg")
        _writable_copy(dirs[_SDK], work / "sdk")
        run_step(
            [
                go,
                "build",
                "-trimpath",
                "-ldflags",
                _LDFLAGS,
                "-o",
                str(staging / "pulumi"),
                "./cmd/pulumi",
            ],
            f"building the Pulumi CLI v{PULUMI_VERSION} (about 7 minutes on 2 cores)",
            cwd=work / "pkg",
        )
        _install_python_provider(work / "sdk", staging)
        if not answers_pinned_version(staging / "pulumi"):
            raise StackError(f"the freshly built Pulumi CLI does not answer v{PULUMI_VERSION}")
        staging.chmod(0o755)
        shutil.rmtree(root / "bin", ignore_errors=True)
        staging.rename(root / "bin")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


def _adopt(bin_dir: Path) -> bool:
    """Whether `bin_dir` holds a usable build (fixing the launcher's mode if needed)."""
    if not answers_pinned_version(bin_dir / "pulumi"):
        return False
    launcher = bin_dir / PYTHON_PROVIDER
    if not launcher.is_file():
        return False
    # Copied out of the read-only module cache the launcher is not executable; the engine
    # must be able to exec it.
    if not os.access(launcher, os.X_OK):
        launcher.chmod(0o755)
    return True


def ensure_pulumi_cli(cache_dir: Path) -> Path:
    """The bin directory of the pinned Pulumi CLI, built first if needed (idempotent)."""
    root = cli_root(cache_dir)
    bin_dir = root / "bin"
    if _adopt(bin_dir):
        return bin_dir
    go = _go()
    root.mkdir(parents=True, exist_ok=True)
    # One build at a time per machine: a second installer waits, then finds the first's.
    with file_lock(root / ".install.lock"):
        if _adopt(bin_dir):
            return bin_dir
        if answers_pinned_version(bin_dir / "pulumi"):
            # The CLI is whole but the launcher is missing: take it from the sdk module.
            _install_python_provider(_download(go)[_SDK], bin_dir)
        else:
            _build(go, root)
    _progress(f"Pulumi CLI v{PULUMI_VERSION} in {bin_dir}")
    return bin_dir
