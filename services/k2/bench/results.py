"""The benchmark's JSON: figures, the machine they came from, and the targets they meet."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# Issue 13's targets (issue 7's were 150k records/s and a 2 s p99), then issue 7's hot path.
TARGETS = {
    "ingest_two_workers_records_per_s": 200_000,
    "worker_cpu_s_per_million": 5.0,
    "worker_peak_rss_mb": 512,
    "freshness_p99_s_at_50k": 1.5,
    "restart_first_commit_p99_s": 5.0,
    "join_assigned_s": 5.0,
    "sigterm_handover_assigned_s": 2.0,
    "hotpath_ratio": 3.0,
}


def machine() -> dict[str, Any]:
    """CPU count, load average, memory and versions (benchmarks share this machine)."""
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    total_kb = int(next(line for line in meminfo if line.startswith("MemTotal")).split()[1])
    return {
        "cpus": os.cpu_count(),
        "loadavg": list(os.getloadavg()),
        "mem_total_gb": round(total_kb / 2**20, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "git_commit": _git_commit(),
        # Figures measure the working tree: say when the ingest code differs from the commit.
        "ingest_uncommitted_changes": _git_dirty("services/k2/ingest"),
    }


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip()


def _git_dirty(path: str) -> list[str] | None:
    try:
        out = subprocess.run(
            ["git", "status", "--porcelain", "--", path],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return [line[3:] for line in out.stdout.splitlines()]


def _met(value: float | None, target: float, higher_is_better: bool) -> dict[str, Any]:
    if value is None:
        return {"target": target, "measured": None, "met": None}
    met = value >= target if higher_is_better else value <= target
    return {"target": target, "measured": value, "met": met}


def targets(parts: dict[str, Any]) -> dict[str, Any]:
    """Each target against what was measured (None when its part did not run)."""
    two = next((r for r in parts.get("throughput", {}).get("runs", []) if r["workers"] == 2), None)
    at_50k = next(
        (r for r in parts.get("freshness", {}).get("rates", []) if r["offered_per_s"] == 50_000),
        None,
    )
    rss = parts.get("rss", {}).get("peak_rss_mb")
    runs = parts.get("throughput", {}).get("runs", [])
    # The worst run's CPU per million records (one worker and two): from the workers' launch
    # (start-up included), and from their assignment on (what each further record costs).
    cpu = max((r["worker_cpu_s_per_million"] for r in runs), default=None)
    steady = [r.get("worker_cpu_s_per_million_from_assignment") for r in runs]
    cpu_steady = None if not steady or None in steady else max(s for s in steady if s is not None)
    membership = parts.get("membership", {})
    restart = membership.get("restart_first_commit_s", {}).get("p99")
    return {
        "ingest_two_workers_records_per_s": _met(
            two["records_per_s"] if two else None, TARGETS["ingest_two_workers_records_per_s"], True
        ),
        "ingest_two_workers_records_per_s_from_assignment": _met(
            two.get("records_per_s_from_assignment") if two else None,
            TARGETS["ingest_two_workers_records_per_s"],
            True,
        ),
        "worker_cpu_s_per_million": _met(cpu, TARGETS["worker_cpu_s_per_million"], False),
        "worker_cpu_s_per_million_from_assignment": _met(
            cpu_steady, TARGETS["worker_cpu_s_per_million"], False
        ),
        "worker_peak_rss_mb": _met(rss, TARGETS["worker_peak_rss_mb"], False),
        "freshness_p99_s_at_50k": _met(
            at_50k["seen_s"]["p99"] if at_50k else None, TARGETS["freshness_p99_s_at_50k"], False
        ),
        "restart_first_commit_p99_s": _met(restart, TARGETS["restart_first_commit_p99_s"], False),
        # "receives partitions within 5 s", "hands its partitions over within 2 s": the
        # assignment; the first commits after it are reported beside (join_first_commit_s,
        # sigterm_handover_s).
        "join_assigned_s": _met(
            membership.get("join_assigned_s"), TARGETS["join_assigned_s"], False
        ),
        "sigterm_handover_assigned_s": _met(
            membership.get("sigterm_handover_assigned_s"),
            TARGETS["sigterm_handover_assigned_s"],
            False,
        ),
        "hotpath_ratio": _met(
            parts.get("hotpath", {}).get("ratio"), TARGETS["hotpath_ratio"], True
        ),
    }


def write(document: dict[str, Any], folder: Path) -> Path:
    """Write `document` to `folder/<UTC timestamp>.json`."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + ".json")
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


def now_iso() -> str:
    """UTC now, ISO 8601."""
    return datetime.now(UTC).isoformat(timespec="seconds")
