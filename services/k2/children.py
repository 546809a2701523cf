"""K2 commands as child processes: how to start `k2`, and how to stop one gracefully.

Shared by the demo, the benchmarks, the load run and the tests, which all run `k2 ingest run`
as a child so that it can be signalled (SIGTERM to drain, kill -9 to crash) like a deployment.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

STOP_TIMEOUT_S = 60.0


def k2_command() -> list[str]:
    """argv[0:] that runs the `k2` CLI of this interpreter's environment."""
    script = Path(sys.executable).with_name("k2")
    if script.is_file():
        return [str(script)]
    # k2.cli.main has no `__main__` guard: `-m k2.cli.main` would run nothing.
    return [sys.executable, "-c", "from k2.cli.main import app; app()"]


def terminate(process: subprocess.Popen[bytes]) -> None:
    """Send SIGTERM unless it has already exited (callers stopping many signal all first)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)


def stop(process: subprocess.Popen[bytes], timeout_s: float = STOP_TIMEOUT_S) -> int:
    """SIGTERM (an ingest worker flushes, commits and leaves its group), wait, then reap.

    A child still running after `timeout_s` is killed: a hung worker must not hang its caller.
    """
    terminate(process)
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    return int(process.returncode)
