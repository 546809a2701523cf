"""The suite's stacks are shared per xdist group: the grouping itself must work.

pytest 9.2 stores a node's id where pytest-xdist 3.8 cannot append its `@group` suffix, so
every `xdist_group` was silently ignored: the cluster profile's session stack came up once
per worker (three 3-broker clusters on two cores). This runs a tiny suite with two grouped
modules on three workers and asserts one worker ran the whole group.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

MODULE = """
import os
import pytest

pytestmark = pytest.mark.xdist_group("shared-stack")


@pytest.mark.parametrize("n", range(4))
def test_{name}(n):
    with open(os.environ["GROUP_LOG"], "a") as log:
        log.write(os.environ["PYTEST_XDIST_WORKER"] + "\\n")
"""

UNGROUPED = """
import pytest


@pytest.mark.parametrize("n", range(8))
def test_free(n):
    pass
"""


def test_a_group_runs_on_one_worker(tmp_path: Path) -> None:
    for name in ("alpha", "beta"):
        (tmp_path / f"test_{name}.py").write_text(MODULE.format(name=name))
    (tmp_path / "test_free.py").write_text(UNGROUPED)
    log = tmp_path / "workers.log"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-n",
            "3",
            "--dist",
            "loadgroup",
            str(tmp_path),
        ],
        cwd=tmp_path,
        env={"GROUP_LOG": str(log), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    workers = log.read_text().split()
    assert len(workers) == 8
    assert len(set(workers)) == 1, workers
