"""(f) Identity dedup cost with 1M and 10M identities already in the table, in-process.

The loader hands `TableIdentities` a table of N committed identities of one day (as the
Iceberg scan would: exchange, symbol, trade_id, event_time), spread over the synthetic
symbols; then batches of a poll chunk's size are checked: new records (misses, the steady
state) and records already in the table (hits, a replay; its first batch reads the day's
exact keys, timed apart). Reported: the loads, the cost per record of each, the store's size
(hashes only, then with the exact keys a replay reads) and what the process's RSS grew by
while holding the loaded day (what a worker holds for one table's hot day).
"""

from __future__ import annotations

import gc
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from k2.bench.synthetic import SYMBOLS
from k2.ingest.dedup import US_PER_DAY, TableIdentities
from k2.ingest.memory import release_free_memory

BATCH = 10_000  # the worker's poll chunk
BATCHES = 30
DAY_US = 1_767_225_600_000_000 // US_PER_DAY * US_PER_DAY  # 2026-01-01, any day works


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _rows(start: int, count: int) -> pa.Table:
    n = np.arange(start, start + count)
    symbols = np.array(SYMBOLS)[n % len(SYMBOLS)]  # a trade's symbol is part of its identity
    return pa.table(
        {
            "exchange": pa.array(["XASX"] * count),
            "symbol": pa.array(symbols),
            "trade_id": pa.array(np.char.add("T", n.astype(str))),
            "event_time": pa.array(DAY_US + n, type=pa.timestamp("us", tz="UTC")),
        }
    )


def _per_record_us(ids: TableIdentities, batches: list[pa.RecordBatch]) -> tuple[float, int]:
    found = 0
    started = time.perf_counter()
    for batch in batches:
        found += len(ids.duplicates(batch))
    return (time.perf_counter() - started) / (len(batches) * BATCH) * 1e6, found


def measure(identities: int, seed: int = 11) -> dict[str, Any]:
    """Load `identities` committed ones, then time misses and hits."""
    rng = np.random.default_rng(seed)
    gc.collect()
    before = _rss_mb()
    # What the table's scan returns (every asked symbol of the day): for the first load
    # (hashes kept), then, on the replay's first batch, for the replayed partitions' exact keys.
    scans = [_rows(0, identities)]
    # A window that holds the table's day and every batch checked here: nothing is trimmed.
    window = identities + len(SYMBOLS) + (2 * BATCHES + 1) * BATCH
    ids = TableIdentities(window, "trade_id", lambda _days: scans.pop())
    started = time.perf_counter()
    every_symbol = _rows(identities, len(SYMBOLS)).set_column(1, "symbol", pa.array(SYMBOLS))
    ids.duplicates(every_symbol.to_batches()[0])  # one record per symbol loads the whole day
    load_s = time.perf_counter() - started
    gc.collect()
    release_free_memory()
    held = _rss_mb() - before
    misses = [
        _rows(identities + len(SYMBOLS) + i * BATCH, BATCH).to_batches()[0] for i in range(BATCHES)
    ]
    hits = [
        _rows(int(s), BATCH).to_batches()[0]
        for s in rng.integers(0, identities - BATCH, BATCHES + 1)
    ]
    miss_us, miss_found = _per_record_us(ids, misses)
    held_steady_mb = ids.store_bytes() / 1e6
    scans.append(_rows(0, identities))
    started = time.perf_counter()
    exact_found = len(ids.duplicates(hits[0]))  # reads the replayed partitions' exact keys
    exact_load_s = time.perf_counter() - started
    hit_us, hit_found = _per_record_us(ids, hits[1:])
    return {
        "identities": identities,
        "load_s": round(load_s, 2),
        "miss_us_per_record": round(miss_us, 3),
        "exact_load_s": round(exact_load_s, 2),
        "hit_us_per_record": round(hit_us, 3),
        "duplicates_found": {"misses": miss_found, "hits": exact_found + hit_found},
        # Hashes only (steady ingest), then with every exact key of the replayed day.
        "store_mb": round(held_steady_mb, 1),
        "store_mb_replaying": round(ids.store_bytes() / 1e6, 1),
        "rss_growth_mb": round(held, 1),
    }


def run(sizes: tuple[int, ...] = (1_000_000, 10_000_000)) -> dict[str, Any]:
    """One measurement per size, smallest first."""
    return {"batch": BATCH, "runs": [measure(n) for n in sizes]}
