"""`python -m loadtest.run` (`task load`): Locust against a live ingest, judged by thresholds.

1. A stack: the one named by K2_* variables, or an ephemeral one started for the run.
2. A fresh catalogue prefix, bootstrapped; one ingest worker per table (trades, quotes).
3. Locust, headless, with loadtest/locust.conf; CSV and HTML reports in loadtest/reports/.
4. Meanwhile each table is polled; every snapshot's first-seen time, joined afterwards with
   the Kafka timestamps (set at `produce()`) of the records it covers, gives freshness.
5. Exit 1 when produce p95, the error ratio or freshness p99 exceeds its threshold.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from k2.bench.environment import bootstrapped, stack_under_test, unique_prefix
from k2.bench.visibility import SnapshotWatcher, freshness, summary
from k2.bench.workers import WorkerProcess
from k2.catalog import load_catalog
from k2.contracts.catalogue import Dataset
from k2.demo.progress import end_offsets
from k2.settings import Endpoints

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = ROOT / "loadtest" / "locust.conf"
REPORTS = ROOT / "loadtest" / "reports"
TABLES = ("trades", "quotes")
DRAIN_TIMEOUT_S = 180.0
THRESHOLDS = {  # locust.conf key -> default
    "k2-max-p95-ms": 250.0,
    "k2-max-error-ratio": 0.001,
    "k2-max-freshness-p99-s": 5.0,
}


def read_conf(path: Path) -> dict[str, str]:
    """`key = value` lines of a locust.conf (comments and blanks skipped)."""
    found: dict[str, str] = {}
    for line in path.read_text().splitlines():
        text = line.strip()
        if text and not text.startswith(("#", ";", "[")) and "=" in text:
            key, _, value = text.partition("=")
            found[key.strip()] = value.strip()
    return found


def high_watermarks(bootstrap_servers: str, dataset: Dataset) -> int:
    """Records in the dataset's topic (sum of partition high watermarks; fresh topics)."""
    return sum(end_offsets(bootstrap_servers, dataset.topic.name).values())


def aggregated_stats(csv_base: Path) -> dict[str, float]:
    """Requests, failures and p95 (ms) of the `Aggregated` row of Locust's stats CSV."""
    with Path(f"{csv_base}_stats.csv").open() as handle:
        for row in csv.DictReader(handle):
            if row["Name"] == "Aggregated":
                return {
                    "requests": float(row["Request Count"]),
                    "failures": float(row["Failure Count"]),
                    "p95_ms": float(row["95%"]) if row["95%"] not in ("", "N/A") else 0.0,
                    "rps": float(row["Requests/s"]),
                }
    return {"requests": 0.0, "failures": 0.0, "p95_ms": 0.0, "rps": 0.0}


def _locust(
    endpoints: Endpoints, config: Path, prefix: str, csv_base: Path, args: argparse.Namespace
) -> int:
    command = [
        sys.executable, "-m", "locust",
        "--config", str(config),
        "--csv", str(csv_base),
        "--html", f"{csv_base}.html",
        "--k2-prefix", prefix,
    ]  # fmt: skip
    if args.processes != 1:
        command += ["--processes", str(args.processes)]
    for flag in ("users", "spawn_rate", "run_time"):
        value = getattr(args, flag)
        if value is not None:
            command += [f"--{flag.replace('_', '-')}", str(value)]
    env = {
        **os.environ,
        **endpoints.as_env(),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    return subprocess.run([*command, *args.locust_args], env=env, cwd=ROOT, check=False).returncode


def run(args: argparse.Namespace) -> dict[str, Any]:
    """One load run; the summary document (verdict included)."""
    conf = read_conf(args.config)
    limits = {k: float(conf.get(k, d)) for k, d in THRESHOLDS.items()}
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    args.reports.mkdir(parents=True, exist_ok=True)
    csv_base = args.reports / f"load-{stamp}"
    with stack_under_test() as under_test:
        endpoints = under_test.endpoints
        prefix = unique_prefix("load")
        catalogue = bootstrapped(endpoints, prefix)
        catalog = load_catalog(endpoints)
        datasets = {name: catalogue.dataset(name) for name in TABLES}
        workers = {
            name: WorkerProcess(endpoints, name, prefix, args.reports / f"load-{stamp}-{name}.log")
            for name in TABLES
        }
        watchers = {
            name: SnapshotWatcher(catalog, d.table_identifier).start()
            for name, d in datasets.items()
        }
        started_ms = float(time.time_ns() // 1_000_000)  # Kafka timestamps are whole ms
        try:
            locust_code = _locust(endpoints, args.config, prefix, csv_base, args)
            for name, dataset in datasets.items():
                target = high_watermarks(endpoints.kafka_bootstrap_servers, dataset)
                deadline = time.monotonic() + DRAIN_TIMEOUT_S
                while watchers[name].total(dataset.topic.name, dataset.topic.partitions) < target:
                    workers[name].check_alive()
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.5)
            for watcher in watchers.values():
                watcher.stop()
        finally:
            for worker in workers.values():
                worker.stop()
        ages = {
            name: freshness(endpoints.kafka_bootstrap_servers, w.snapshots, started_ms)
            for name, w in watchers.items()
        }
    stats = aggregated_stats(csv_base)
    every_age = [a for f in ages.values() for a in f.seen_s]
    fresh = summary(every_age)
    error_ratio = stats["failures"] / stats["requests"] if stats["requests"] else 1.0
    checks = {
        "produce_p95_ms": (stats["p95_ms"], limits["k2-max-p95-ms"]),
        "error_ratio": (round(error_ratio, 6), limits["k2-max-error-ratio"]),
        "freshness_p99_s": (fresh["p99"], limits["k2-max-freshness-p99-s"]),
    }
    verdicts = {
        name: {"measured": value, "limit": limit, "ok": value is not None and value <= limit}
        for name, (value, limit) in checks.items()
    }
    return {
        "prefix": prefix,
        "locust_exit_code": locust_code,
        "requests": stats["requests"],
        "failures": stats["failures"],
        "requests_per_s": stats["rps"],
        "freshness_s": {name: summary(f.seen_s) for name, f in ages.items()} | {"all": fresh},
        "worker_peak_rss_mb": {n: round((w.peak_rss or 0) / 2**20, 1) for n, w in workers.items()},
        "checks": verdicts,
        "passed": all(v["ok"] for v in verdicts.values()) and stats["requests"] > 0,
        "reports": {"csv": f"{csv_base}_stats.csv", "html": f"{csv_base}.html"},
        "loadavg": list(os.getloadavg()),
    }


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """Options; anything unrecognised goes to Locust as is."""
    parser = argparse.ArgumentParser(prog="python -m loadtest.run", description=__doc__)
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--processes", type=int, default=1, help="Locust processes (-1: per core)")
    parser.add_argument("--users", type=int)
    parser.add_argument("--spawn-rate", type=float)
    parser.add_argument("--run-time")
    parser.add_argument("--reports", type=Path, default=REPORTS)
    args, rest = parser.parse_known_args(argv)
    args.locust_args = rest
    return args


def main(argv: list[str] | None = None) -> int:
    """Run, print the summary, write it next to the reports; 0 only when every check passed."""
    args = parse(argv)
    document = run(args)
    text = json.dumps(document, indent=2)
    print(text)
    Path(document["reports"]["csv"].replace("_stats.csv", "-summary.json")).write_text(text + "\n")
    return 0 if document["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
