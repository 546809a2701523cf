"""Spark vs pyiceberg on the same machine (`python -m k2.bench --only spark`).

The real ASX trades and quotes are loaded into two fresh catalogues in ingest-sized commits
(one small file per partition and commit, as workers leave them), one per engine, so each
engine compacts the same untouched tables. Every job runs in a process of its own
(`k2.bench.engine_job`); its peak memory is the largest sum of VmRSS over that process and
its children (the Spark JVM) sampled every 100 ms, its times are what the job reports:
`start_s` (catalog client or Spark session ready: the JVM start) and `work_s`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
from pyiceberg.io.pyarrow import schema_to_pyarrow
from pyiceberg.table import Table

from k2.bench.environment import StackUnderTest, bootstrapped, unique_prefix
from k2.catalog import load_catalog
from k2.engines import Engine
from k2.replay.asx import AsxSource, Dataset, default_data_dir
from k2.replay.bad_rows import BadRowReport
from k2.settings import CatalogPrincipal, Endpoints

COMMIT_ROWS = 5_000  # about what a worker commits per second at the replay's pace
SAMPLE_S = 0.1


def _records(source: AsxSource, dataset: Dataset) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    bad = BadRowReport()
    for market_file in source.market_files(dataset):
        rows = (
            source.trades(market_file, bad)
            if dataset is Dataset.TRADES
            else source.quotes(market_file, bad)
        )
        out.extend(dict(r) for r in rows)
    out.sort(key=lambda r: r["event_time"])  # arrival order, as a replay publishes them
    return out


def _load(table: Table, records: list[dict[str, Any]]) -> int:
    schema = schema_to_pyarrow(table.schema(), include_field_ids=False)
    commits = 0
    for start in range(0, len(records), COMMIT_ROWS):
        table.append(pa.Table.from_pylist(records[start : start + COMMIT_ROWS], schema=schema))
        commits += 1
    return commits


def _tree_rss_kb(root: int) -> int:
    """VmRSS of `root` and every descendant, in kB."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat[stat.rfind(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


def _job(engine: Engine, job: str, prefix: str, endpoints: Endpoints, logs: Path) -> dict[str, Any]:
    began = time.monotonic()
    with (logs / f"engine-{engine}-{job}.log").open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "k2.bench.engine_job", engine.value, job, prefix],
            env={**os.environ, **endpoints.as_env()},
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        peak = 0
        while proc.poll() is None:
            peak = max(peak, _tree_rss_kb(proc.pid))
            time.sleep(SAMPLE_S)
        out = proc.stdout.read() if proc.stdout else ""
    if proc.returncode != 0:
        raise RuntimeError(f"{engine} {job} failed (exit {proc.returncode}); see {log.name}")
    report: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return {
        **{k: round(v, 2) if isinstance(v, float) else v for k, v in report.items()},
        "total_s": round(time.monotonic() - began, 2),
        "peak_rss_mb": round(peak / 1024, 1),
    }


def run(stack: StackUnderTest, logs: Path) -> dict[str, Any]:
    """Load the ASX tables twice, then scan + OHLCV and compact with each engine."""
    source = AsxSource(default_data_dir())
    data = {name: _records(source, Dataset(name)) for name in ("trades", "quotes")}
    admin = load_catalog(stack.endpoints, CatalogPrincipal.ADMIN)
    prefixes = {engine: unique_prefix(f"bench{engine.value[:2]}") for engine in Engine}
    commits: dict[str, int] = {}
    for prefix in prefixes.values():
        catalogue = bootstrapped(stack.endpoints, prefix)
        for name, records in data.items():
            table = admin.load_table(catalogue.dataset(name).table_identifier)
            commits[name] = _load(table, records)
    jobs: dict[str, Any] = {}
    for engine, prefix in prefixes.items():
        for job in ("scan", "compact"):
            jobs[f"{engine.value}.{job}"] = _job(engine, job, prefix, stack.endpoints, logs)
    return {
        "rows": {name: len(records) for name, records in data.items()},
        "commits_per_table": commits,
        "jobs": jobs,
        "spark": "local[*], driver 2g, shuffle partitions 8 (SparkSettings defaults)",
    }
