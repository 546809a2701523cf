"""Where the machine's CPU went during a timed window: per stack service, worker, bench, rest.

Benchmarks share two cores with every stack service, so a throughput figure means little
without knowing who else was busy. A window takes two snapshots of /proc and reports, per
labelled process tree (a service's pid and everything below it, e.g. PostgreSQL's backends),
the CPU seconds used in between: utime + stime of the live processes plus cutime + cstime,
the time of children already reaped (a backend that exited inside the window counts there).
The bench process counts its own threads only (its children are workers, labelled apart);
"other" is the machine's busy time (/proc/stat) that no label accounts for.
"""

from __future__ import annotations

import os
import resource
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TICKS_PER_S = os.sysconf("SC_CLK_TCK")
UNKNOWN = "unknown"
OTHER_TOP = 5  # the busiest unlabelled commands, a hint at what else ran
OTHER_MIN_S = 0.05
COMMAND_WORDS, COMMAND_CHARS = 3, 60  # how an unlabelled process is named in "other_top"


@dataclass(frozen=True)
class ServicePids:
    """The stack's service pids by service name; None where not running or not known."""

    pids: Mapping[str, int | None]
    note: str | None = None  # why they are not known (a stack run elsewhere)


@dataclass(frozen=True)
class Proc:
    """One process as /proc/<pid>/stat shows it (times in clock ticks)."""

    ppid: int
    comm: str
    start: int  # start time since boot: tells a process from a later one reusing its pid
    own: int  # utime + stime, every thread
    reaped: int  # cutime + cstime: children it has waited for


def read_proc(pid: int) -> Proc | None:
    """The process's stat line parsed, or None once it has gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may contain spaces and parentheses: split after the last ")".
    comm = text[text.find("(") + 1 : text.rfind(")")]
    f = text[text.rfind(")") + 2 :].split()
    return Proc(int(f[1]), comm, int(f[19]), int(f[11]) + int(f[12]), int(f[13]) + int(f[14]))


def processes() -> dict[int, Proc]:
    """Every process on the machine."""
    out: dict[int, Proc] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (proc := read_proc(int(entry.name))) is not None:
            out[int(entry.name)] = proc
    return out


def machine_ticks() -> tuple[int, int]:
    """(busy, idle) clock ticks of all cores since boot, from the first line of /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = fields[:8]
    return user + nice + system + irq + softirq + steal, idle + iowait


def _self_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _labels(procs: Mapping[int, Proc], roots: Mapping[int, str], skip: int) -> dict[int, str]:
    """Each process under a root → that root's label (the nearest root above it wins)."""
    out: dict[int, str] = {}
    for pid in procs:
        seen, at = [], pid
        while at in procs and at not in roots and at != skip and at not in out and at > 1:
            seen.append(at)
            at = procs[at].ppid
        label = roots.get(at) or out.get(at)
        if label is not None:
            out.update(dict.fromkeys(seen, label))
            out[pid] = label
    return out


@dataclass
class _Snapshot:
    at: float
    procs: dict[int, Proc]
    busy: int
    idle: int
    bench_s: float

    @classmethod
    def now(cls) -> _Snapshot:
        busy, idle = machine_ticks()
        return cls(time.monotonic(), processes(), busy, idle, _self_s())


@dataclass
class CpuMeter:
    """CPU seconds per labelled process tree between `start()` and `finish()`.

    Roots are the stack's services (given at construction) and any process `track`ed later,
    e.g. workers; a root that is gone or was restarted by the end is reported as "unknown".
    """

    services: ServicePids
    _roots: dict[int, tuple[str, int | None]] = field(default_factory=dict)  # pid → label, start
    _unknown: set[str] = field(default_factory=set)
    _begin: _Snapshot | None = None

    def __post_init__(self) -> None:
        for name, pid in self.services.pids.items():
            if pid is None:
                self._unknown.add(name)
            else:
                self._roots[pid] = (name, None)

    def start(self) -> CpuMeter:
        """Open the window; service roots are identified now."""
        self._begin = _Snapshot.now()
        for pid, (label, _) in list(self._roots.items()):
            self._pin(pid, label, self._begin.procs.get(pid))
        return self

    def track(self, label: str, pid: int) -> None:
        """Account a process tree under `label` too: from its start if it started inside the
        window (a worker just spawned), else from the window's start."""
        self._pin(pid, label, read_proc(pid))

    def _pin(self, pid: int, label: str, proc: Proc | None) -> None:
        if proc is None:
            self._roots.pop(pid, None)
            self._unknown.add(label)
        else:
            self._roots[pid] = (label, proc.start)

    def _roots_in(self, snap: _Snapshot) -> dict[int, str]:
        """Root pids → labels, for the roots that are the pinned processes in `snap` (a pid
        seen in the other snapshot may have belonged to another process)."""
        return {
            pid: label
            for pid, (label, started) in self._roots.items()
            if (proc := snap.procs.get(pid)) is not None and proc.start == started
        }

    def finish(self) -> dict[str, Any]:
        """Close the window: the JSON section of where the CPU went."""
        if self._begin is None:
            raise RuntimeError("CpuMeter.finish() before start()")
        begin, end = self._begin, _Snapshot.now()
        unknown = set(self._unknown)
        for pid, (label, started) in self._roots.items():
            proc = end.procs.get(pid)
            if proc is None or proc.start != started:
                unknown.add(label)  # gone or restarted: its tree cannot be compared
        me = os.getpid()
        ticks: dict[str, int] = defaultdict(int)
        for snap, sign in ((end, 1), (begin, -1)):
            for pid, label in _labels(snap.procs, self._roots_in(snap), me).items():
                if label not in unknown:
                    proc = snap.procs[pid]
                    ticks[label] += sign * (proc.own + proc.reaped)
        wall_s = end.at - begin.at
        busy_s = (end.busy - begin.busy) / TICKS_PER_S
        tracked = [label for label, _ in self._roots.values() if label not in self.services.pids]
        cpu_s: dict[str, float | str] = {}
        for label in dict.fromkeys([*tracked, *self.services.pids]):
            cpu_s[label] = UNKNOWN if label in unknown else round(ticks[label] / TICKS_PER_S, 2)
        cpu_s["bench"] = round(end.bench_s - begin.bench_s, 2)
        known = sum(v for v in cpu_s.values() if isinstance(v, float))
        cpu_s["other"] = round(max(0.0, busy_s - known), 2)
        return {
            "wall_s": round(wall_s, 2),
            "cores": os.cpu_count(),
            "cores_busy": round(busy_s / wall_s, 2) if wall_s else None,
            "busy_s": round(busy_s, 2),
            "idle_s": round((end.idle - begin.idle) / TICKS_PER_S, 2),
            "cpu_s": cpu_s,
            "other_top": _other_top(begin, end, self._roots_in(end), me),
            "stack_pids": {"pids": dict(self.services.pids), "note": self.services.note},
        }


def command_of(pid: int, proc: Proc) -> str:
    """A short, recognisable command line: the program's name and its first arguments."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        argv = []
    if not argv or not argv[0]:
        return proc.comm  # a kernel thread, or gone
    return " ".join([Path(argv[0]).name, *argv[1:COMMAND_WORDS]])[:COMMAND_CHARS]


def _other_top(
    begin: _Snapshot, end: _Snapshot, roots: Mapping[int, str], me: int
) -> dict[str, float]:
    """CPU seconds of unlabelled processes by command, the busiest first.

    A process alive at the end counts its own time and its reaped children's; a process that
    ended inside the window is in its parent's reaped time, so its time from before the
    window is taken off its parent's count (e.g. a script running short-lived commands).
    """
    labelled = _labels(begin.procs, roots, me) | _labels(end.procs, roots, me)
    used: dict[int, int] = defaultdict(int)  # live pid at the end → ticks used in the window
    for pid, proc in end.procs.items():
        if pid != me and pid not in labelled:
            used[pid] += proc.own + proc.reaped
            before = begin.procs.get(pid)
            if before is not None and before.start == proc.start:
                used[pid] -= before.own + before.reaped
    for pid, before in begin.procs.items():
        if pid not in end.procs and pid not in labelled and before.ppid in used:
            used[before.ppid] -= before.own + before.reaped
    by_command: dict[str, int] = defaultdict(int)
    for pid, ticks in used.items():
        by_command[command_of(pid, end.procs[pid])] += ticks
    top = sorted(by_command.items(), key=lambda kv: -kv[1])[:OTHER_TOP]
    return {cmd: round(t / TICKS_PER_S, 2) for cmd, t in top if t / TICKS_PER_S >= OTHER_MIN_S}
