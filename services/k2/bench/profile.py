"""Where an ingest worker's time goes: one worker in-process under cProfile on a pre-loaded topic.

Not a default part (`--only profile`): profiling slows the worker down. The top functions by
own time and by cumulative time go into the JSON, and the full stats to a `.prof` file for
`python -m pstats` or snakeviz.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import threading
import time
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from k2.bench.environment import bootstrapped, unique_prefix
from k2.bench.preload import TradeProducer
from k2.bench.visibility import SnapshotWatcher
from k2.catalog import load_catalog
from k2.ingest.app import build_worker
from k2.ingest.config import IngestSettings
from k2.settings import Endpoints

TOP = 25


def _top(stats: pstats.Stats, key: str) -> list[str]:
    out = io.StringIO()
    stats.stream = out  # type: ignore[attr-defined]  # pstats writes to this stream
    stats.sort_stats(key).print_stats(TOP)
    lines = out.getvalue().splitlines()
    start = next((i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls")), 0)
    return [line.rstrip() for line in lines[start:] if line.strip()]


def run(endpoints: Endpoints, records: int, logs: Path) -> dict[str, Any]:
    """Pre-load `records` trades, ingest them with a profiled in-process worker."""
    prefix = unique_prefix("prof")
    dataset = bootstrapped(endpoints, prefix).dataset("trades")
    TradeProducer(endpoints, dataset).flat_out(records)
    worker = build_worker(
        "trades", endpoints, IngestSettings(), prefix=prefix, registry=CollectorRegistry()
    )
    watcher = SnapshotWatcher(load_catalog(endpoints), dataset.table_identifier, interval_s=0.5)

    def stop_when_done() -> None:
        while watcher.total(dataset.topic.name, dataset.topic.partitions) < records:
            time.sleep(0.5)
            watcher.poll()
        worker.stop()

    threading.Thread(target=stop_when_done, daemon=True).start()
    profiler = cProfile.Profile()
    started = time.monotonic()
    profiler.enable()
    worker.run(max_seconds=900)
    profiler.disable()
    seconds = time.monotonic() - started
    path = logs / f"{prefix}worker.prof"
    profiler.dump_stats(path)
    stats = pstats.Stats(profiler)
    return {
        "records": records,
        "seconds_profiled": round(seconds, 2),
        "records_per_s_under_profiler": round(records / seconds),
        "stats_file": str(path),
        "top_own_time": _top(stats, "tottime"),
        "top_cumulative": _top(stats, "cumulative"),
    }
