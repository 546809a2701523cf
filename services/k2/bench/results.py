"""The benchmark's JSON: figures, the machine they came from, and the targets they meet."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

TARGETS = {
    "ingest_two_workers_records_per_s": 150_000,
    "freshness_p99_s_at_50k": 2.0,
    "worker_peak_rss_mb": 512,
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
    return {
        "ingest_two_workers_records_per_s": _met(
            two["records_per_s"] if two else None, TARGETS["ingest_two_workers_records_per_s"], True
        ),
        "freshness_p99_s_at_50k": _met(
            at_50k["seen_s"]["p99"] if at_50k else None, TARGETS["freshness_p99_s_at_50k"], False
        ),
        "worker_peak_rss_mb": _met(rss, TARGETS["worker_peak_rss_mb"], False),
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
