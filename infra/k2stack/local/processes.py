"""Starting and stopping the stack's processes by pid, and nothing else.

A pid file records the pid and the kernel's start time of the process; a pid whose start time
differs is a different process that reused the number, and is never signalled.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from k2.errors import StackError
from k2stack.local.launcher import LaunchCommand


@dataclass(frozen=True)
class RunningProcess:
    pid: int
    start_ticks: int


def _start_ticks(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat (start time), or None if gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces: split after its closing parenthesis.
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in {"Z", "X"}:
        return None
    return int(fields[19])


def start(command: LaunchCommand, log_file: Path, pid_file: Path) -> RunningProcess:
    """Start a process in a session of its own, its output appended to `log_file`.

    posix_spawn rather than subprocess.Popen: the services outlive the process that starts
    them (a CLI call, an xdist worker), and a Popen object that is collected or left behind at
    exit while its process still runs is reported as a leak; a bare pid is what we manage.
    """
    log_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    argv = list(command.argv)
    if command.cwd is not None:
        argv = ["env", "-C", str(command.cwd), *argv]
    if command.user and os.geteuid() == 0:
        # setpriv execs in place (no extra parent process), so the pid is the service's.
        argv = [
            "setpriv",
            f"--reuid={command.user}",
            f"--regid={command.user}",
            "--init-groups",
            *argv,
        ]
    executable = shutil.which(argv[0])
    if executable is None:
        raise StackError(f"could not start {argv[0]}: not found")
    with log_file.open("ab") as log:
        log.write(f"\n=== k2 stack: starting {' '.join(command.argv)}\n".encode())
    log_fd = os.open(log_file, os.O_WRONLY | os.O_APPEND)
    null_fd = os.open(os.devnull, os.O_RDONLY)
    try:
        pid = os.posix_spawn(
            executable,
            argv,
            {**os.environ, **command.env},
            file_actions=[
                (os.POSIX_SPAWN_DUP2, null_fd, 0),
                (os.POSIX_SPAWN_DUP2, log_fd, 1),
                (os.POSIX_SPAWN_DUP2, log_fd, 2),
            ],
            setsid=True,
        )
    except OSError as e:
        raise StackError(f"could not start {argv[0]}: {e}") from e
    finally:
        os.close(log_fd)
        os.close(null_fd)
    ticks = _start_ticks(pid)
    started = RunningProcess(pid, ticks if ticks is not None else -1)
    pid_file.write_text(json.dumps({"pid": started.pid, "start_ticks": started.start_ticks}))
    return started


def running(pid_file: Path) -> RunningProcess | None:
    """The process a pid file names, if it is still that same process and alive."""
    try:
        data = json.loads(pid_file.read_text())
        recorded = RunningProcess(int(data["pid"]), int(data["start_ticks"]))
    except (OSError, ValueError, KeyError):
        return None
    if _start_ticks(recorded.pid) != recorded.start_ticks:
        _reap(recorded.pid)  # a dead child of ours stays a zombie until collected
        return None
    return recorded


def stop(pid_file: Path, timeout_s: float = 30.0) -> bool:
    """Stop the process a pid file names (TERM, then KILL after `timeout_s`).

    Returns whether a process was stopped. Signals go to the process group the process leads
    (it was started in a session of its own), so helper children it spawned stop with it.
    """
    return stop_together([pid_file], timeout_s)[0]


def stop_together(pid_files: list[Path], timeout_s: float = 30.0) -> list[bool]:
    """Stop several processes at once: TERM to all, then wait, then KILL whatever is left.

    The nodes of a Kafka cluster stopped one by one each wait for a quorum that the previous
    stops took away (the last one until its timeout); stopped together they leave together.
    """
    found = [(pid_file, running(pid_file)) for pid_file in pid_files]
    for _, proc in found:
        if proc is not None:
            _signal_group(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    left = [proc for _, proc in found if proc is not None]
    while left and time.monotonic() < deadline:
        for proc in left:
            _reap(proc.pid)
        left = [proc for proc in left if _start_ticks(proc.pid) == proc.start_ticks]
        if left:
            time.sleep(0.1)
    for proc in left:
        _signal_group(proc.pid, signal.SIGKILL)
    if left:
        time.sleep(0.2)
    for pid_file, proc in found:
        if proc is not None:
            _reap(proc.pid)
        pid_file.unlink(missing_ok=True)
    return [proc is not None for _, proc in found]


def kill(pid_file: Path, timeout_s: float = 30.0) -> bool:
    """SIGKILL the process a pid file names and its process group, wait until it is gone.

    Returns whether a process was killed. Fault injection: the service gets no chance to
    flush or say goodbye, as when its machine dies.
    """
    proc = running(pid_file)
    if proc is None:
        pid_file.unlink(missing_ok=True)
        return False
    _signal_group(proc.pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout_s
    # Gone means reaped, not merely a zombie: a JVM's leader thread turns zombie while its
    # other threads still exit holding its sockets, and a restart right away found its ports
    # taken. A process that is not our child is reaped by its parent (or init) instead.
    while Path(f"/proc/{proc.pid}").exists() and _start_ticks_any(proc.pid) == proc.start_ticks:
        _reap(proc.pid)
        if time.monotonic() > deadline:
            raise StackError(f"pid {proc.pid} survived SIGKILL for {timeout_s:.0f}s")
        time.sleep(0.05)
    pid_file.unlink(missing_ok=True)
    return True


def _start_ticks_any(pid: int) -> int | None:
    """The start time of `pid` even when it is a zombie (None when there is no such pid)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2 :].split()[19])


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        os.kill(pid, sig)


def _reap(pid: int) -> None:
    """Collect the exit status when the process is our own child (pytest's stack fixture)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
