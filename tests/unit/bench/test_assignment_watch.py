"""The bench's assignment watch: a worker's first assignment after launch, and its CPU then."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from k2.bench.workers import ASSIGNED, AssignmentWatch


@dataclass
class _Worker:
    pid: int
    log_file: Path


def _wait(condition: Any, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def test_only_lines_logged_after_launch_count(tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    log.write_text('{"message": "joining"}\n{' + ASSIGNED + "}\n")  # an earlier run's lines
    worker = _Worker(os.getpid(), log)
    watch = AssignmentWatch([worker], poll_s=0.01)  # type: ignore[list-item]
    assert not _wait(lambda: watch.assigned_at, 0.3)
    assert watch.steady_cpu_s() is None and watch.first_assigned() is None
    with log.open("a") as out:
        out.write("{" + ASSIGNED + ', "partitions": [0]}\n')
    assert _wait(lambda: watch.assigned_at)
    sum(range(3_000_000))  # some CPU after the assignment
    steady = watch.steady_cpu_s()
    assert steady is not None and steady > 0
    assert watch.first_assigned() == watch.assigned_at[worker.pid]
