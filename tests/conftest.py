"""Session-wide test fixtures: one real local stack per test run, shared by xdist workers.

The controlling pytest process reserves a state directory and exports it to its xdist workers
(`K2_TEST_STACK_DIR`); the first test that needs the stack starts it there on free ports,
under a file lock, and every other worker reuses it. The controller stops and deletes it when
the run ends. When `K2_*` endpoint variables already point at a running stack (bring your own
stack, e.g. one `pulumi up` made), tests use that instead and start nothing.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest

from k2.replay.asx import default_data_dir
from k2.settings import Endpoints, endpoint_env_names
from k2stack.local.stack import LocalStack
from k2stack.locking import file_lock

STACK_DIR_VAR = "K2_TEST_STACK_DIR"


def _is_controller(config: pytest.Config) -> bool:
    return not hasattr(config, "workerinput")


def pytest_configure(config: pytest.Config) -> None:
    if _is_controller(config) and STACK_DIR_VAR not in os.environ:
        run_dir = Path(tempfile.mkdtemp(prefix="k2-test-run-"))
        # PostgreSQL runs as its own OS user and must be able to enter the stack's directory.
        run_dir.chmod(0o755)
        os.environ[STACK_DIR_VAR] = str(run_dir / "stack")
        config.stash[_OWNED_DIR] = run_dir


def pytest_unconfigure(config: pytest.Config) -> None:
    run_dir = config.stash.get(_OWNED_DIR, None)
    if run_dir is None:
        return
    if (run_dir / "stack" / "stack.json").is_file():
        LocalStack(run_dir / "stack", log=lambda _: None).down(purge=True)
    shutil.rmtree(run_dir, ignore_errors=True)
    os.environ.pop(STACK_DIR_VAR, None)


_OWNED_DIR = pytest.StashKey[Path]()


def _bring_your_own() -> bool:
    return all(name in os.environ for name in endpoint_env_names())


@pytest.fixture(scope="session")
def stack_dir() -> Path | None:
    """The state directory of the run's local stack (None with a bring-your-own stack)."""
    if _bring_your_own():
        return None
    return Path(os.environ[STACK_DIR_VAR])


@pytest.fixture(scope="session")
def stack(stack_dir: Path | None) -> Endpoints:
    """Every K2_* endpoint of a running stack: the run's own, or the one K2_* names."""
    if stack_dir is None:
        return Endpoints()  # type: ignore[call-arg]  # read from K2_* variables
    log_file = stack_dir.parent / "stack.log"
    with file_lock(stack_dir.parent / "stack.lock"):
        local = LocalStack(
            stack_dir,
            ephemeral_ports=True,
            log=lambda line: _append(log_file, line),
        )
        env = local.up()
    return Endpoints.from_env(env)


def _append(path: Path, line: str) -> None:
    with path.open("a") as handle:
        handle.write(line + "\n")


@pytest.fixture
def unique() -> str:
    """A short unique, lowercase prefix for topics, subjects, namespaces and tables."""
    return f"t{uuid.uuid4().hex[:10]}_"


@pytest.fixture(scope="session")
def asx_data_dir() -> Path:
    """The real ASX sample data (never copied into the repo); K2_DATA_DIR overrides."""
    path = default_data_dir()
    if not (path / "trades").is_dir():
        pytest.fail(f"ASX data not found at {path}: set K2_DATA_DIR")
    return path
