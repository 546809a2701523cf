"""py-spy, the sampling profiler, attached to a running worker: every thread, no code changes.

`py-spy record --format raw --threads` writes collapsed stacks, one line per distinct stack:
`thread (<tid>): <name>;<outermost frame>;...;<innermost frame> <samples>`, each frame
`<function> (<file>:<line>)`. Idle threads (blocked in a system call, e.g. waiting for the
GIL or for librdkafka) are not sampled, so samples measure Python activity (the detection is
racy: see `WAITS`). Threads that never run Python (librdkafka's own) are invisible to it.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# py-spy's idle detection reads each thread's OS state just before pausing the process, which
# is racy (py-spy issue #92): threads blocked in these calls still show up. Samples whose
# innermost frame is one of them are counted as waiting, not as the thread's work.
WAITS = frozenset(
    {
        "_worker (concurrent/futures/thread.py)",  # an idle pool thread: work_queue.get()
        "Condition.wait (threading.py)",
        "Event.wait (threading.py)",
        "Thread._wait_for_tstate_lock (threading.py)",
        "SocketIO.readinto (socket.py)",  # a blocking HTTP read: waiting for the server
        "BaseSelector.select (selectors.py)",
        "EpollSelector.select (selectors.py)",
    }
)
RATE_HZ = 250
TOP = 15
DETAIL_MIN_SHARE = 0.02  # threads below this share of samples get no function lists
STOP_TIMEOUT_S = 60.0

_LINE = re.compile(r"^thread \((?P<tid>\w+)\)(?:: (?P<name>[^;]*))?;(?P<stack>.*) (?P<n>\d+)$")
_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>.*?)(?::\d+)?\)$")
# Paths inside an environment or the standard library, down to the module's own path.
_PREFIX = re.compile(r"^.*/(?:site-packages|dist-packages|lib/python3\.\d+)/")


def executable() -> str | None:
    """This environment's py-spy (the dev extra), else one on PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.is_file() else shutil.which("py-spy")


class Sampler:
    """`py-spy record` attached to one process until `stop()`; collapsed stacks to `out`."""

    def __init__(
        self, pid: int, out: Path, rate_hz: int = RATE_HZ, max_seconds: int = 3_600
    ) -> None:
        self.out = out
        self.rate_hz = rate_hz
        self.error: str | None = None
        self.command: list[str] = []
        self._proc: subprocess.Popen[str] | None = None
        exe = executable()
        if exe is None:
            self.error = "py-spy not found (install the dev extra: pip install -e '.[dev]')"
            return
        self.command = [
            exe, "record", "--format", "raw", "--threads", "-r", str(rate_hz),
            "-d", str(max_seconds), "--pid", str(pid), "-o", str(out),
        ]  # fmt: skip
        try:
            self._proc = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        except OSError as e:
            self.error = f"could not start py-spy: {e}"

    @property
    def pid(self) -> int | None:
        """py-spy's own pid (it uses CPU too), None when it did not start."""
        return self._proc.pid if self._proc is not None else None

    def stop(self) -> str:
        """Interrupt (py-spy writes its file on Ctrl-C) and reap; py-spy's last output line."""
        if self._proc is None:
            return ""
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGINT)
        try:
            output, _ = self._proc.communicate(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            output, _ = self._proc.communicate()
        message = output.split("Stack backtrace:", 1)[0]  # py-spy's own, not ours to read
        lines = [line.strip() for line in message.splitlines() if line.strip()]
        if self._proc.returncode != 0 or not self.out.is_file():
            # e.g. no ptrace rights ("Permission denied"), or the process had gone.
            self.error = f"py-spy exited with {self._proc.returncode}: " + " | ".join(lines[:6])
        return next((line for line in lines if "Samples:" in line), "")


def function_of(frame: str) -> str:
    """`decode (k2/ingest/decoder.py)` from `decode (/…/site-packages/k2/ingest/decoder.py:41)`.

    Line numbers go: a function's samples at different lines are one function's.
    """
    match = _FRAME.match(frame)
    if match is None:
        return frame
    return f"{match['function']} ({_PREFIX.sub('', match['file'])})"


@dataclass
class _Thread:
    name: str | None = None
    samples: int = 0  # busy samples (not in a wait call)
    waiting: int = 0
    own: Counter[str] = field(default_factory=Counter)
    inclusive: Counter[str] = field(default_factory=Counter)
    first_stack: list[str] = field(default_factory=list)

    def common_root(self) -> str | None:
        """The innermost function on every busy sample's stack (the thread's entry point)."""
        common = [f for f in self.first_stack if self.inclusive[f] == self.samples]
        return common[-1] if common else None


def _lines(counter: Counter[str], total: int, skip: set[str] | None = None) -> list[str]:
    ranked = [(fn, n) for fn, n in counter.most_common() if fn not in (skip or set())]
    return [f"{n / total:6.1%} {n:7d}  {fn}" for fn, n in ranked[:TOP]]


def summarise(raw: Path) -> dict[str, Any]:
    """Per thread: its share of busy samples, top functions by own and by inclusive samples.

    Samples whose innermost frame is a blocking wait (`WAITS`) count as waiting, not busy.
    Percentages in the function lists are of the thread's busy samples; a function counts
    once per sample in the inclusive list however often it recurs in the stack, and the
    functions on every stack (entry points down to `common_root`) are left out of it.
    """
    threads: dict[str, _Thread] = defaultdict(_Thread)
    for line in raw.read_text().splitlines():
        match = _LINE.match(line.strip())
        if match is None:
            continue
        thread, n = threads[match["tid"]], int(match["n"])
        thread.name = thread.name or match["name"]  # py-spy names a thread once it knows it
        frames = [function_of(f) for f in match["stack"].split(";")]
        if frames[-1] in WAITS:
            thread.waiting += n
            continue
        thread.samples += n
        thread.own[frames[-1]] += n
        thread.first_stack = thread.first_stack or frames
        for function in set(frames):
            thread.inclusive[function] += n
    busy = sum(t.samples for t in threads.values())
    out: list[dict[str, Any]] = []
    for tid, t in sorted(threads.items(), key=lambda kv: -kv[1].samples):
        share = t.samples / busy if busy else 0.0
        entry: dict[str, Any] = {
            "thread": t.name or "?",
            "tid": tid,
            "samples": t.samples,
            "waiting_samples": t.waiting,
            "share": round(share, 3),
        }
        if share >= DETAIL_MIN_SHARE:
            everywhere = {f for f, n in t.inclusive.items() if n == t.samples}
            entry["common_root"] = t.common_root()
            entry["top_own"] = _lines(t.own, t.samples)
            entry["top_inclusive"] = _lines(t.inclusive, t.samples, everywhere)
        out.append(entry)
    waiting = sum(t.waiting for t in threads.values())
    return {"samples": busy + waiting, "busy_samples": busy, "threads": out}
